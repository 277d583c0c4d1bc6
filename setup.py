"""Build the optional C line scanner; migtrace falls back to pure Python without a compiler."""

from setuptools import Extension, setup

# Both readers share the buffer, column and string-interner code of this header.
COMMON = ["parsers/_common.h"]

setup(
    ext_modules=[
        Extension(
            "parsers._scan",
            sources=["parsers/_scan.c"],
            depends=COMMON,
            optional=True,
            extra_compile_args=["-O3"],
        ),
        Extension(
            "parsers._simple",
            sources=["parsers/_simple.c"],
            depends=COMMON,
            optional=True,
            extra_compile_args=["-O2"],
        ),
    ]
)
