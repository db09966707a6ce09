"""pakus: grounded question answering over local documents."""
__version__ = "0.1.0"
