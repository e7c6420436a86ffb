"""Test double of Natron's ``NatronEngine`` module (RB-2.5 docs: UserParamHolder, Param types, callbacks).

Strict where Natron is: params have Natron's class names and methods; ``IntParam.set("x")``
raises TypeError; a choice option that does not exist raises ValueError; ``onParamChanged``
callbacks are called with Natron's keyword names ``(thisParam, thisNode, thisGroup, app,
userEdited)``, on programmatic changes too (``userEdited=False``) and on button ``trigger()``;
``app.createNode`` only knows registered plugin IDs. PyPlugs are found on the Natron path by their
``# Natron PyPlug`` line. Test helpers start with an underscore.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

_render_hook: Any = None  # callable(writer, frame) simulating Natron writing a frame


class Param:
    def __init__(self, name: str, label: str) -> None:
        if not isinstance(name, str) or not isinstance(label, str):
            raise TypeError("param name and label must be strings")
        self._name, self._label = name, label
        self._help = ""
        self._visible = True
        self._enabled = True
        self._new_line = True
        self._holder: Effect | None = None
        self._value: Any = None
        self._default: Any = None

    def getScriptName(self) -> str:
        return self._name

    def getLabel(self) -> str:
        return self._label

    def setHelp(self, help: str) -> None:
        self._help = help

    def getHelp(self) -> str:
        return self._help

    def setVisible(self, visible: bool) -> None:
        self._visible = bool(visible)

    def getIsVisible(self) -> bool:
        return self._visible

    def setEnabled(self, enabled: bool, dimension: int = 0) -> None:
        self._enabled = bool(enabled)

    def getIsEnabled(self, dimension: int = 0) -> bool:
        return self._enabled

    def setAddNewLine(self, a: bool) -> None:
        self._new_line = bool(a)

    def getAddNewLine(self) -> bool:
        return self._new_line

    def setEvaluateOnChange(self, eval: bool) -> None:
        pass

    def setAnimationEnabled(self, e: bool) -> None:
        pass

    def setPersistant(self, persistant: bool) -> None:
        pass

    def _changed(self, user: bool = False) -> None:
        if self._holder is not None:
            self._holder._param_changed(self, user)


class ValueParam(Param):
    _types: tuple[type, ...] = (object,)

    def _coerce(self, value: Any) -> Any:
        if isinstance(value, bool) and bool not in self._types or not isinstance(value, self._types):
            raise TypeError(f"{type(self).__name__} {self._name}: wrong type {type(value).__name__}")
        return value

    def get(self, frame: int | None = None) -> Any:
        return self._value

    def getValue(self, dimension: int = 0) -> Any:
        return self._value

    def set(self, value: Any, frame: int | None = None) -> None:
        self._value = self._coerce(value)
        self._changed()

    def setValue(self, value: Any, dimension: int = 0) -> None:
        self.set(value)

    def setDefaultValue(self, value: Any, dimension: int = 0) -> None:
        self._default = self._value = self._coerce(value)

    def getDefaultValue(self, dimension: int = 0) -> Any:
        return self._default


class AnimatedParam(ValueParam):
    def __init__(self, name: str, label: str) -> None:
        super().__init__(name, label)
        self._expression: tuple[str, bool] | None = None

    def setExpression(self, expr: str, hasRetVariable: bool, dimension: int = 0) -> bool:
        if not isinstance(expr, str):
            raise TypeError("expression must be a string")
        compile(expr, "<expression>", "exec" if hasRetVariable else "eval")
        self._expression = (expr, bool(hasRetVariable))
        return True

    def getExpression(self, dimension: int = 0) -> tuple[str, bool] | None:
        return self._expression

    def _evaluate(self, frame: int) -> Any:
        """Test helper: the value Natron's expression engine would give at ``frame``."""
        if self._expression is None:
            return self._value
        expr, has_ret = self._expression
        scope: dict[str, Any] = {"frame": frame}
        if has_ret:
            exec(expr, scope)
            return scope["ret"]
        return eval(expr, scope)


class IntParam(AnimatedParam):
    _types = (int,)

    def __init__(self, name: str, label: str) -> None:
        super().__init__(name, label)
        self._value = self._default = 0
        self._min, self._max = -(2**31), 2**31 - 1

    def setMinimum(self, minimum: int, dimension: int = 0) -> None:
        self._min = minimum

    def setMaximum(self, maximum: int, dimension: int = 0) -> None:
        self._max = maximum

    def getMinimum(self, dimension: int = 0) -> int:
        return self._min

    def getMaximum(self, dimension: int = 0) -> int:
        return self._max

    def setDisplayMinimum(self, minimum: int, dimension: int = 0) -> None:
        pass

    def setDisplayMaximum(self, maximum: int, dimension: int = 0) -> None:
        pass


class DoubleParam(IntParam):
    _types = (int, float)

    def _coerce(self, value: Any) -> float:
        return float(super()._coerce(value))


class BooleanParam(AnimatedParam):
    _types = (bool,)

    def __init__(self, name: str, label: str) -> None:
        super().__init__(name, label)
        self._value = self._default = False


class ChoiceParam(AnimatedParam):
    def __init__(self, name: str, label: str) -> None:
        super().__init__(name, label)
        self._options: list[tuple[str, str]] = []
        self._value = self._default = 0

    def addOption(self, option: str, help: str) -> None:
        self._options.append((option, help))

    def getOption(self, index: int) -> str:
        return self._options[index][0]

    def getNumOptions(self) -> int:
        return len(self._options)

    def getOptions(self) -> list[str]:
        return [o for o, _ in self._options]

    def _coerce(self, value: Any) -> int:
        if isinstance(value, bool):
            raise TypeError("ChoiceParam takes an index or an option label")
        if isinstance(value, int):
            if not 0 <= value < len(self._options):
                raise ValueError(f"ChoiceParam {self._name}: index {value} out of range")
            return value
        if isinstance(value, str):
            labels = self.getOptions()
            if value not in labels:
                raise ValueError(f"ChoiceParam {self._name}: no option {value!r}")
            return labels.index(value)
        raise TypeError("ChoiceParam takes an index or an option label")


class StringParamBase(AnimatedParam):
    _types = (str,)

    def __init__(self, name: str, label: str) -> None:
        super().__init__(name, label)
        self._value = self._default = ""


class StringParam(StringParamBase):
    pass


class FileParam(StringParamBase):
    pass


class OutputFileParam(StringParamBase):
    pass


class PathParam(StringParamBase):
    pass


class ButtonParam(Param):
    def trigger(self) -> None:
        self._changed(user=True)


class PageParam(Param):
    def __init__(self, name: str, label: str) -> None:
        super().__init__(name, label)
        self._params: list[Param] = []

    def addParam(self, param: Param) -> None:
        self._params.append(param)


class Effect:
    """A node (``NatronEngine.Effect``); PyPlug instances and groups are :class:`Group` too."""

    def __init__(self, app: App, plugin_id: str, parent: Any) -> None:
        self._app, self._plugin_id, self._parent = app, plugin_id, parent
        self._params: dict[str, Param] = {}
        self._inputs: dict[int, Effect] = {}
        self._script_name = plugin_id.split(".")[-1]
        self._label = self._script_name
        self._user_params_refreshed = False
        self._add(StringParam("onParamChanged", "onParamChanged"))
        self._add(StringParam("onInputChanged", "onInputChanged"))
        for name, cls in _PLUGIN_PARAMS.get(plugin_id, []):
            self._add(cls(name, name))

    def _add(self, param: Param) -> Param:
        if param._name in self._params:
            raise ValueError(f"a param named {param._name} already exists")
        param._holder = self
        self._params[param._name] = param
        return param

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(name)

    def getPluginID(self) -> str:
        return self._plugin_id

    def getScriptName(self) -> str:
        return self._script_name

    def setScriptName(self, scriptName: str) -> bool:
        self._script_name = scriptName
        return True

    def getLabel(self) -> str:
        return self._label

    def setLabel(self, name: str) -> None:
        self._label = name

    def getParam(self, name: str) -> Param | None:
        return self._params.get(name)

    def getParams(self) -> list[Param]:
        return list(self._params.values())

    def connectInput(self, inputNumber: int, input: Effect) -> bool:
        self._inputs[inputNumber] = input
        self._input_changed(inputNumber)
        return True

    def disconnectInput(self, inputNumber: int) -> None:
        self._inputs.pop(inputNumber, None)
        self._input_changed(inputNumber)

    def getInput(self, inputNumber: int) -> Effect | None:
        return self._inputs.get(inputNumber)

    def getMaxInputCount(self) -> int:
        return 10

    def getContainerGroup(self) -> Any:
        return self._parent

    # user params
    def _create(self, cls: type[Param], name: str, label: str) -> Any:
        return self._add(cls(name, label))

    def createIntParam(self, name: str, label: str) -> IntParam:
        return self._create(IntParam, name, label)

    def createDoubleParam(self, name: str, label: str) -> DoubleParam:
        return self._create(DoubleParam, name, label)

    def createBooleanParam(self, name: str, label: str) -> BooleanParam:
        return self._create(BooleanParam, name, label)

    def createChoiceParam(self, name: str, label: str) -> ChoiceParam:
        return self._create(ChoiceParam, name, label)

    def createStringParam(self, name: str, label: str) -> StringParam:
        return self._create(StringParam, name, label)

    def createFileParam(self, name: str, label: str) -> FileParam:
        return self._create(FileParam, name, label)

    def createOutputFileParam(self, name: str, label: str) -> OutputFileParam:
        return self._create(OutputFileParam, name, label)

    def createPathParam(self, name: str, label: str) -> PathParam:
        return self._create(PathParam, name, label)

    def createButtonParam(self, name: str, label: str) -> ButtonParam:
        return self._create(ButtonParam, name, label)

    def createPageParam(self, name: str, label: str) -> PageParam:
        return self._create(PageParam, name, label)

    def refreshUserParamsGUI(self) -> None:
        self._user_params_refreshed = True

    def _param_changed(self, param: Param, user: bool) -> None:
        callback = self._params["onParamChanged"].get()
        if callback:
            _resolve_callback(callback)(thisParam=param, thisNode=self, thisGroup=self._parent, app=self._app,
                                        userEdited=user)

    def _input_changed(self, index: int) -> None:
        callback = self._params["onInputChanged"].get()
        if callback:
            _resolve_callback(callback)(inputIndex=index, thisNode=self, thisGroup=self._parent, app=self._app)


def _resolve_callback(name: str) -> Any:
    """A callback string as Natron evaluates it: ``Module.function`` where ``Module`` is a name Natron's
    interpreter knows, i.e. a PyPlug (whose ``from <Name>Ext import *`` brings the extension's functions in),
    never an arbitrary importable module (callbacks.rst; groups.rst "Adding hand-written code")."""
    module_name, _, func = name.rpartition(".")
    modules = {m.__name__: m for m in natron._pyplugs().values()}
    if module_name not in modules:
        raise NameError(f"name '{module_name}' is not defined (callback '{name}')")
    return getattr(modules[module_name], func)


class Group(Effect):
    def __init__(self, app: App, plugin_id: str, parent: Any) -> None:
        super().__init__(app, plugin_id, parent)
        self._children: list[Effect] = []

    def getChildren(self) -> list[Effect]:
        return list(self._children)

    def getNode(self, fullySpecifiedName: str) -> Effect | None:
        return next((c for c in self._children if c.getScriptName() == fullySpecifiedName), None)


_PLUGIN_PARAMS: dict[str, list[tuple[str, type[Param]]]] = {
    "fr.inria.built-in.Input": [],
    "fr.inria.built-in.Output": [],
    "fr.inria.built-in.Group": [],
    "fr.inria.openfx.ReadOIIO": [("filename", FileParam), ("firstFrame", IntParam), ("lastFrame", IntParam),
                                 ("onMissingFrame", ChoiceParam)],
    "fr.inria.openfx.WriteOIIO": [("filename", OutputFileParam), ("frameRange", ChoiceParam),
                                  ("firstFrame", IntParam), ("lastFrame", IntParam)],
    "net.sf.openfx.switchPlugin": [("which", IntParam)],
    "net.fxarena.openfx.Text": [("text", StringParam)],
}
_WRITERS = ("fr.inria.openfx.WriteOIIO",)


class App:
    """``NatronEngine.App`` (the project). Natron's App inherits Group: ``getChildren()``/``getNode()`` list the
    project's top-level nodes (App.rst); the top-level graph itself is private to the double."""

    def __init__(self) -> None:
        self.__top = Group(self, "fr.inria.built-in.Group", None)
        self._project: dict[str, Any] = {"projectPath": StringParam("projectPath", "Project path"),
                                         "frameRange": _FrameRange()}
        self.rendered: list[tuple[str, int]] = []

    def createNode(self, pluginID: str, majorVersion: int = -1, group: Any = None, properties: Any = None) -> Effect:
        parent = group if group is not None else self.__top
        pyplug = natron._pyplugs().get(pluginID)
        if pyplug is None and pluginID not in _PLUGIN_PARAMS:
            raise RuntimeError(f"no plugin with ID {pluginID}")
        node: Effect = Group(self, pluginID, parent) if pyplug or pluginID.endswith("Group") else Effect(
            self, pluginID, parent)
        taken = {c.getScriptName() for c in parent._children}
        base, n = node.getScriptName(), 1
        while f"{base}{n}" in taken:
            n += 1
        node.setScriptName(f"{base}{n}")
        parent._children.append(node)
        if pyplug is not None:
            pyplug.createInstance(self, node)
        return node

    def getProjectParam(self, name: str) -> Any:
        return self._project.get(name)

    def render(self, effect: Any, firstFrame: int | None = None, lastFrame: int | None = None,
               frameStep: int = 1) -> None:
        tasks = effect if isinstance(effect, list) else [(effect, firstFrame, lastFrame, frameStep)]
        for writer, first, last, *step in tasks:
            if writer.getPluginID() not in _WRITERS:
                raise RuntimeError(f"{writer.getScriptName()} is not a writer")
            if not writer.getParam("filename").get():
                raise RuntimeError(f"{writer.getScriptName()}: no file name")
            for f in range(first, last + 1, step[0] if step else 1):
                if _render_hook is not None:
                    _render_hook(writer, f)
                self.rendered.append((writer.getScriptName(), f))

    def getNode(self, name: str) -> Effect | None:
        return self.__top.getNode(name)

    def getChildren(self) -> list[Effect]:
        return self.__top.getChildren()


class _FrameRange(IntParam):
    def __init__(self) -> None:
        super().__init__("frameRange", "Frame range")
        self._range = [1, 100]

    def getValue(self, dimension: int = 0) -> int:
        return self._range[dimension]

    def setValue(self, value: Any, dimension: int = 0) -> None:
        self._range[dimension] = int(value)


class PyCoreApplication:
    def __init__(self) -> None:
        self._paths: list[str] = []
        self._background = False
        self._instances: list[App] = []
        self.callbacks: dict[str, str] = {}

    def isBackground(self) -> bool:
        return self._background

    def appendToNatronPath(self, path: str) -> None:
        self._paths.append(path)

    def getNatronPath(self) -> list[str]:
        return list(self._paths)

    def getPluginIDs(self) -> list[str]:
        return sorted(set(_PLUGIN_PARAMS) | set(self._pyplugs()))

    def getInstance(self, idx: int) -> App:
        return self._instances[idx]

    def setOnProjectLoadedCallback(self, pythonFunctionName: str) -> None:
        self.callbacks["projectLoaded"] = pythonFunctionName

    def setOnProjectCreatedCallback(self, pythonFunctionName: str) -> None:
        self.callbacks["projectCreated"] = pythonFunctionName

    def _pyplugs(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for folder in self._paths:
            if not os.path.isdir(folder):
                continue
            for entry in sorted(os.listdir(folder)):
                path = os.path.join(folder, entry)
                if not entry.endswith(".py") or not os.path.isfile(path):
                    continue
                with open(path, encoding="utf-8") as handle:
                    if "# Natron PyPlug" not in handle.read().splitlines():
                        continue
                if folder not in sys.path:
                    sys.path.insert(0, folder)
                module = importlib.import_module(entry[:-3])
                plugin_id = module.getPluginID() if hasattr(module, "getPluginID") else module.getLabel()
                found.setdefault(plugin_id, module)  # the first one found wins
        return found

    def _new_app(self, background: bool = False) -> App:
        self._background = background
        app = App()
        self._instances = [app]
        return app


natron = PyCoreApplication()


def _reset(background: bool = False) -> App:
    """Test helper: a fresh Natron with one project open; returns its app."""
    global _render_hook, natron
    _render_hook = None
    natron._paths.clear()
    natron.callbacks.clear()
    return natron._new_app(background)
