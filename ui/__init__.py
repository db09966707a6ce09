"""The Gradio chat page for pakus (`pakus ui`).

Importing this package is cheap: gradio is imported only inside the functions of `ui.app` that
build and serve the page.
"""
