"""The plugin is tested the way pytest plugins are: by running pytest on generated test files.

``pytester`` comes from ``-p pytester`` in the pytest configuration (pyproject.toml):
``pytest_plugins`` is refused in a conftest below the top level.
"""

# Inline pytester runs drop the modules they import when they end, and numpy (which the
# recorder uses) cannot be imported twice in one process: import the plugin's core here, once.
import harness.session  # noqa: F401
