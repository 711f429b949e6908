# The one compiled part of synmix: curate/_runs.c (the run sweep of curate.rle.column_runs).
# optional=True: where it cannot be built (no C compiler), the install goes on and curate.rle
# uses its NumPy pass instead — same output, slower (README "Speed").
from setuptools import Extension, setup

setup(ext_modules=[Extension("curate._runs", ["curate/_runs.c"], optional=True)])
