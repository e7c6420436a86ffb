"""The knob panel, generated from :data:`sparsemat.settings.ENGINE_KNOBS` and ``OUTPUT_KNOBS``.

Names, labels, ranges, defaults and tooltips come only from the :class:`~sparsemat.settings.KnobSpec`
table, so the panel shows the same knobs as the CLI and the node. Widgets by kind: ``float`` →
QDoubleSpinBox, ``int`` → QSpinBox (odd steps for ``kernel_size``), ``bool`` → QCheckBox,
``choice`` → QComboBox (editable when the knob accepts free-form values such as ``onnx:PATH``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from sparsemat.settings import ENGINE_KNOBS, OUTPUT_KNOBS, KnobSpec, OutputSettings, Settings

_INT_LIMIT = 2_147_483_647


def make_knob_widget(spec: KnobSpec) -> QWidget:
    """One editor widget for ``spec``, set to its default, with its tooltip."""
    widget: QWidget
    if spec.kind == "bool":
        box = QCheckBox()
        box.setChecked(bool(spec.default))
        widget = box
    elif spec.kind == "int":
        spin = QSpinBox()
        spin.setRange(int(spec.minimum if spec.minimum is not None else -_INT_LIMIT),
                      int(min(spec.maximum, _INT_LIMIT) if spec.maximum is not None else _INT_LIMIT))
        if spec.name == "kernel_size":
            spin.setSingleStep(2)
        if spec.name == "max_active_pixels":
            spin.setSpecialValueText("auto (from free memory)")
            spin.setSingleStep(100_000)
            spin.setGroupSeparatorShown(True)
        spin.setValue(int(spec.default))
        spin.setKeyboardTracking(False)
        widget = spin
    elif spec.kind == "float":
        dspin = QDoubleSpinBox()
        dspin.setDecimals(3)
        dspin.setRange(float(spec.minimum if spec.minimum is not None else -1e9),
                       float(spec.maximum if spec.maximum is not None else 1e9))
        dspin.setSingleStep(0.01)
        dspin.setValue(float(spec.default))
        dspin.setKeyboardTracking(False)
        widget = dspin
    elif spec.kind == "choice":
        combo = QComboBox()
        combo.addItems(list(spec.choices))
        combo.setEditable(bool(spec.open_choice_prefixes))
        combo.setCurrentText(str(spec.default))
        widget = combo
    else:
        from PySide6.QtWidgets import QLineEdit

        edit = QLineEdit(str(spec.default))
        widget = edit
    widget.setToolTip(spec.tooltip)
    widget.setObjectName(f"knob_{spec.name}")
    return widget


def widget_value(spec: KnobSpec, widget: QWidget) -> Any:
    """The value ``widget`` holds, typed as the settings expect."""
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QSpinBox):
        return int(widget.value())
    if isinstance(widget, QDoubleSpinBox):
        return float(widget.value())
    if isinstance(widget, QComboBox):
        return widget.currentText().strip()
    return widget.text()  # type: ignore[attr-defined]


def set_widget_value(widget: QWidget, value: Any) -> None:
    """Show ``value`` in ``widget`` (no type checks: the settings validate)."""
    if isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, QSpinBox):
        widget.setValue(int(value))
    elif isinstance(widget, QDoubleSpinBox):
        widget.setValue(float(value))
    elif isinstance(widget, QComboBox):
        if widget.findText(str(value)) < 0 and widget.isEditable():
            widget.addItem(str(value))
        widget.setCurrentText(str(value))
    else:
        widget.setText(str(value))  # type: ignore[attr-defined]


class KnobPanel(QWidget):
    """Every engine and output knob, grouped, with a *Defaults* button.

    Signals:
        changed(str): a knob was edited by the user or through :meth:`set_values` (its name).

    Attributes:
        widgets: knob name → editor widget.
        specs: knob name → :class:`KnobSpec`.
    """

    changed = Signal(str)

    def __init__(self, parent: QWidget | None = None,
                 groups: Iterable[tuple[str, tuple[KnobSpec, ...]]] = (("Engine", ENGINE_KNOBS),
                                                                        ("Output", OUTPUT_KNOBS))) -> None:
        super().__init__(parent)
        self.widgets: dict[str, QWidget] = {}
        self.specs: dict[str, KnobSpec] = {}
        self._quiet = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        for title, specs in groups:
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            for spec in specs:
                w = make_knob_widget(spec)
                label = QLabel(spec.label)
                label.setToolTip(spec.tooltip)
                form.addRow(label, w)
                self.widgets[spec.name] = w
                self.specs[spec.name] = spec
                self._connect(spec.name, w)
            layout.addWidget(box)
        self.defaults_button = QPushButton("Defaults")
        self.defaults_button.setToolTip("Set every knob back to the engine's default.")
        self.defaults_button.clicked.connect(self.reset_defaults)
        layout.addWidget(self.defaults_button)
        layout.addStretch(1)

    def _connect(self, name: str, w: QWidget) -> None:
        def emit(*_: Any) -> None:
            if not self._quiet:
                self.changed.emit(name)

        if isinstance(w, QCheckBox):
            w.toggled.connect(emit)
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.valueChanged.connect(emit)
        elif isinstance(w, QComboBox):
            w.currentTextChanged.connect(emit)
        else:
            w.editingFinished.connect(emit)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ values
    def values(self) -> dict[str, Any]:
        """Knob name → current value."""
        return {name: widget_value(self.specs[name], w) for name, w in self.widgets.items()}

    def set_values(self, values: Mapping[str, Any], emit: bool = True) -> None:
        """Show ``values`` (unknown names ignored); emits ``changed`` once per changed knob when ``emit``."""
        before = self.values()
        self._quiet = True
        try:
            for name, value in values.items():
                if name in self.widgets:
                    set_widget_value(self.widgets[name], value)
        finally:
            self._quiet = False
        if emit:
            after = self.values()
            for name in self.widgets:
                if before[name] != after[name]:
                    self.changed.emit(name)

    def reset_defaults(self) -> None:
        """Every knob back to its :class:`KnobSpec` default."""
        self.set_values({name: spec.default for name, spec in self.specs.items()})

    def settings(self) -> Settings:
        """The engine :class:`Settings` (raises :class:`~sparsemat.errors.SettingsError` when invalid)."""
        vals = self.values()
        return Settings(**{s.name: vals[s.name] for s in ENGINE_KNOBS if s.name in vals})

    def output_settings(self) -> OutputSettings:
        """The :class:`OutputSettings` (output mode, overlay)."""
        vals = self.values()
        return OutputSettings(**{s.name: vals[s.name] for s in OUTPUT_KNOBS if s.name in vals})
