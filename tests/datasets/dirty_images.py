"""Tiny image files of the kinds met in real datasets (formats, defects),
shared by the dirty-data tests."""
import cv2
import numpy as np
from PIL import Image


def picture(h=48, w=64):
    """A BGR picture with a red block in the stored top-left corner."""
    img = np.full((h, w, 3), 200, np.uint8)
    img[:h // 3, :w // 4] = (0, 0, 255)
    return img


def write_jpeg(path, img=None):
    cv2.imwrite(str(path), picture() if img is None else img)
    return path


def garble(path, keep=None, seed=0):
    """Overwrite an image's bytes after its first ``keep`` bytes with random
    bytes, length unchanged. Default: the bytes from a JPEG's start-of-scan
    marker on, so that OpenCV cannot decode it (``imdecode`` returns None);
    whether Pillow still reads the header then depends on the random bytes
    (with ``picture()`` and seed 0 it does)."""
    data = bytearray(open(path, 'rb').read())
    if keep is None:
        keep = data.index(b'\xff\xda')  # start of scan
    rng = np.random.default_rng(seed)
    data[keep:] = rng.integers(0, 256, len(data) - keep, np.uint8).tobytes()
    open(path, 'wb').write(bytes(data))
    return path


def write_formats(folder):
    """{name: (path, stored (h, w))} of images in formats seen in the wild."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}

    gray = cv2.cvtColor(picture(), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(folder / 'gray.jpg'), gray)
    out['gray_jpeg'] = folder / 'gray.jpg'

    rgba = np.dstack([picture(), np.full((48, 64), 128, np.uint8)])
    cv2.imwrite(str(folder / 'alpha.png'), rgba)
    out['rgba_png'] = folder / 'alpha.png'

    deep = picture().astype(np.uint16) * 257  # 0..255 -> 0..65535
    cv2.imwrite(str(folder / 'deep.png'), deep)
    out['png_16bit'] = folder / 'deep.png'

    rgb = Image.fromarray(picture()[:, :, ::-1].copy())
    rgb.convert('CMYK').save(folder / 'cmyk.jpg', quality=95)
    out['cmyk_jpeg'] = folder / 'cmyk.jpg'

    # Stored 64x48 (landscape); EXIF orientation 6 says "rotate 90 degrees
    # clockwise to display", which would make it 48x64.
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb.save(folder / 'exif_rot.jpg', quality=95, exif=exif)
    out['exif_rotated_jpeg'] = folder / 'exif_rot.jpg'

    cv2.imwrite(str(folder / 'large.jpg'), picture(3000, 4000))
    out['large_jpeg'] = folder / 'large.jpg'

    cv2.imwrite(str(folder / 'one_pixel.png'), picture(1, 1))
    out['one_pixel_png'] = folder / 'one_pixel.png'
    cv2.imwrite(str(folder / 'small.jpg'), picture(3, 2))
    out['small_jpeg'] = folder / 'small.jpg'
    return out


#: Stored (h, w) of the images of write_formats.
STORED_SIZE = {'gray_jpeg': (48, 64), 'rgba_png': (48, 64),
               'png_16bit': (48, 64), 'cmyk_jpeg': (48, 64),
               'exif_rotated_jpeg': (48, 64), 'large_jpeg': (3000, 4000),
               'one_pixel_png': (1, 1), 'small_jpeg': (3, 2)}
