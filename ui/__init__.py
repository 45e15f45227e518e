"""The PySide6 window. Importing the package puts the Qt bindings' work-arounds in place (:mod:`ui.qt_fixes`)."""

from ui.qt_fixes import install as _install_qt_fixes

_install_qt_fixes()
