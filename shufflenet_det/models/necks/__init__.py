from .thundernet_neck import ContextEnhancementModule, SpatialAttentionModule

__all__ = ['ContextEnhancementModule', 'SpatialAttentionModule']
