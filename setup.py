"""Builds the C extension nearly._nearly together with libnearly's sources.

`pip install .` (offline: `pip install --no-build-isolation .`) compiles
python/nearly/_nearly.c and every C file of the library directories below,
the same set the Makefile puts in libnearly.a, and links the system
libraries the Makefile's LDLIBS names (read from the Makefile so that the
two cannot drift apart).  Needs a C11 compiler, Python's headers and the
-dev packages of those libraries (Debian: libjansson-dev, libxxhash-dev, ...).
"""
import glob
import os
import re

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
LIB_DIRS = ["common", "distance", "quant", "index", "storage", "filter", "collection"]


def rel(p):
    return os.path.relpath(p, HERE)


def makefile_libs():
    libs = []
    with open(os.path.join(HERE, "Makefile")) as f:
        for line in f:
            m = re.match(r"\s*LDLIBS\s*[+:]?=(.*)", line)
            if m:
                libs += [w[2:] for w in m.group(1).split() if w.startswith("-l")]
    return list(dict.fromkeys(libs)) or ["m", "xxhash", "jansson"]


sources = [rel(os.path.join(HERE, "python", "nearly", "_nearly.c"))]
for d in LIB_DIRS:
    sources += sorted(rel(p) for p in glob.glob(os.path.join(HERE, "src", d, "*.c")))

ext = Extension(
    "nearly._nearly",
    sources=sources,
    include_dirs=["include", "src"],
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-std=c11", "-O3", "-pthread", "-fvisibility=hidden", "-Wno-unused-parameter"],
    extra_link_args=["-pthread"],
    libraries=makefile_libs(),
)

setup(ext_modules=[ext])
