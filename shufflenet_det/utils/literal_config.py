"""Reading a config text found in a file (a checkpoint's ``meta['cfg']``)
as data.

mmengine saves a run's config in its checkpoints as the text of a ``.py``
config, and ``Config.fromstring(text, '.py')`` would execute it: a
downloaded checkpoint could run anything on load. :func:`literal_assignments`
parses the text with :mod:`ast` and evaluates nothing: top-level
``name = value`` where the value is built only from literals, ``dict(...)``
calls (keywords, and a dict literal), lists, tuples and dicts. Any other expression
(a name, an attribute, another call, an operator) is :data:`NOT_LITERAL`
in its place, i.e. "the file does not say".

mmengine writes ``meta['cfg']`` as ``Config.pretty_text``, which is in that
form (every base and variable already resolved), so nothing is lost for the
configs mmengine and mmpretrain save.
"""
import ast

#: the value of an assignment that is not a literal
NOT_LITERAL = object()


def _literal(node):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub,
                                                              ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
        return NOT_LITERAL
    # Containers keep the marker in place of what is not a literal, so one
    # computed entry (say float('inf') in a schedule) hides only itself.
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):  # {**other}
            return NOT_LITERAL
        keys = [_literal(k) for k in node.keys]
        if any(k is NOT_LITERAL for k in keys):
            return NOT_LITERAL
        try:
            return dict(zip(keys, (_literal(v) for v in node.values)))
        except TypeError:  # an unhashable key
            return NOT_LITERAL
    # dict(k=v), and dict({...}, k=v) as pretty_text writes keys that are
    # not identifiers ('thin_map.norm').
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == 'dict' and len(node.args) <= 1
            and all(k.arg is not None for k in node.keywords)):
        found = _literal(node.args[0]) if node.args else {}
        if not isinstance(found, dict):
            return NOT_LITERAL
        found.update((k.arg, _literal(k.value)) for k in node.keywords)
        return found
    return NOT_LITERAL


def literal_assignments(text):
    """``{name: value}`` for every top-level assignment of ``text`` (the
    last one wins); what is not a literal is :data:`NOT_LITERAL`, at any
    depth.
    Raises ``SyntaxError`` when ``text`` is not Python."""
    found = {}
    for stmt in ast.parse(text).body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = _literal(value)
    return found
