# The one compiled part of synmix: curate/_rle.c (curate.rle's run sweep and COCO RLE encoder).
# optional=True: where it cannot be built (no C compiler), the install goes on and curate.rle
# uses its NumPy code instead — same output, slower (README "Speed").
from setuptools import Extension, setup

setup(ext_modules=[Extension("curate._rle", ["curate/_rle.c"], optional=True)])
