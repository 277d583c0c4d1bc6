"""Build the optional C line scanner; migtrace falls back to pure Python without a compiler."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "parsers._scan",
            sources=["parsers/_scan.c"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
        Extension(
            "parsers._simple",
            sources=["parsers/_simple.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
    ]
)
