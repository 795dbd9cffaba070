"""The size of an image debate's picture, written once: MNIST digits are SIDE x SIDE grey levels
(0..255), and a pixel is numbered row-major, pixel = row * SIDE + column. Pure module (standard
library only), so the protocol, the models and the judge network can all share it."""

SIDE = 28
PIXEL_COUNT = SIDE * SIDE


def row_column(pixel: int) -> tuple[int, int]:
    return divmod(pixel, SIDE)
