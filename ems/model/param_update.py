"""Push a frozen model's Param values to HiGHS in one pass (operation mode).

Pyomo's persistent HiGHS interface re-evaluates every Param-dependent coefficient, bound and cost
with its expression visitor and pushes each with its own call: 0.14 s of a 1.1-s control step on
the 15-min multi-energy site (10,758 constraint items and 4,992 costs). Once the structure is
frozen (operation mode changes Param values only, ARCHITECTURE §6.6) the same expressions are
compiled once into one Python function of the Params' values; each step evaluates it and pushes
rows, columns and costs with HiGHS's vector calls. The arithmetic is Pyomo's, in Pyomo's order, so
the numbers are the same bit for bit (``tests/operation/test_param_update.py`` compares the
HiGHS models). Anything the compiler does not know (a quadratic objective, another expression node) is
evaluated by Pyomo's ``value`` inside the same pass, or the whole update falls back to Pyomo's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyomo.common.numeric_types import native_numeric_types, value
from pyomo.core.expr import numeric_expr as ne

INF = float("inf")

# expression nodes compiled to Python operators, in Pyomo's own evaluation order
_SUM = (ne.NPV_SumExpression, ne.SumExpression)
_PRODUCT = (ne.NPV_ProductExpression, ne.ProductExpression)
_NEGATION = (ne.NPV_NegationExpression, ne.NegationExpression)
_DIVISION = (ne.NPV_DivisionExpression, ne.DivisionExpression)


def _sum(*args: float) -> float:
    """As Pyomo's SumExpression evaluates: ``sum`` started from the first argument."""
    it = iter(args)
    return sum(it, start=next(it))


class NotCompilable(Exception):
    """The solver's mutable items are not the kinds this module knows: use Pyomo's update."""


def _number(x: float) -> str:
    x = float(x)
    if x != x:
        return "NAN"
    if x in (INF, -INF):
        return "INF" if x > 0 else "(-INF)"
    return repr(x)


class CompiledUpdate:
    """The mutable coefficients, row and column bounds and costs of one persistent HiGHS
    instance (``pyomo.contrib.solver.solvers.highs.Highs`` after ``set_instance``), compiled."""

    def __init__(self, solver: Any) -> None:
        from pyomo.contrib.solver.solvers import highs as ph

        self._params: list[Any] = []  # ParamData objects, read by value each step
        self._param_index: dict[int, int] = {}
        self._opaque: list[Any] = []  # sub-expressions evaluated by Pyomo's value()
        con_map = solver._pyomo_con_to_solver_con_map
        var_map = solver._pyomo_var_to_solver_var_map
        coef_at: list[tuple[int, int]] = []
        row_at: list[int] = []
        col_at: list[int] = []
        src: list[str] = []  # coefficients
        row_src: list[str] = []  # (lower, upper) per row
        col_src: list[str] = []  # (lower, upper) per column
        for con, helpers in solver._mutable_helpers.items():
            for hlp in helpers:
                if isinstance(hlp, ph._MutableLinearCoefficient):
                    coef_at.append((con_map[con], var_map[hlp.pyomo_var_id]))
                    src.append(self._src(hlp.expr))
                elif isinstance(hlp, ph._MutableConstraintBounds):
                    row_at.append(con_map[con])
                    row_src += [self._src(hlp.lower_expr), self._src(hlp.upper_expr)]
                else:
                    raise NotCompilable(type(hlp).__name__)
        for var_id, (_v, hlp) in solver._mutable_bounds.items():
            col_at.append(var_map[var_id])
            col_src += [self._src(hlp.lower_expr), self._src(hlp.upper_expr)]
        obj = solver._mutable_objective
        if obj is None or obj.quadratic_coefs:
            raise NotCompilable("objective")
        cost_at = [var_map[c.pyomo_var_id] for c in obj.linear_coefs]
        cost_src = [self._src(c.expr) for c in obj.linear_coefs]
        offset_src = self._src(obj.constant.expr)
        everything = src + row_src + col_src + cost_src + [offset_src]
        code = "def _f(v, o):\n    return (" + ", ".join(everything) + ",)\n"
        scope: dict[str, Any] = {"INF": INF, "NAN": float("nan"), "_S": _sum}
        exec(compile(code, "<compiled parameter update>", "exec"), scope)  # noqa: S102
        self._f = scope["_f"]
        self._n = (len(src), len(row_src), len(col_src), len(cost_src))
        self._coef_rows = np.array([r for r, _c in coef_at], dtype=np.int32)
        self._coef_cols = np.array([c for _r, c in coef_at], dtype=np.int32)
        self._rows = np.array(row_at, dtype=np.int32)
        self._cols = np.array(col_at, dtype=np.int32)
        self._cost_cols = np.array(cost_at, dtype=np.int32)

    def _src(self, e: Any) -> str:
        """Python source computing ``e`` from v (Param values) and o (opaque values)."""
        if e.__class__ in native_numeric_types:
            return _number(e)
        if not e.is_expression_type():
            if e.is_parameter_type():
                i = self._param_index.setdefault(id(e), len(self._params))
                if i == len(self._params):
                    self._params.append(e)
                return f"v[{i}]"
            if e.is_constant():
                return _number(value(e))
            return self._opaque_src(e)
        if isinstance(e, _SUM):  # Pyomo's sum, from the first argument (flat: no deep AST)
            args = list(e.args)
            tail: list[Any] = []
            while args and isinstance(args[0], _SUM):  # ((a + b) + c): the same additions,
                tail = args[1:] + tail  # in the same order, as one flat sum (a, b, c)
                args = list(args[0].args)
            args += tail
            return "_S(" + ", ".join(self._src(a) for a in args) + ")" if args else "0"
        if isinstance(e, _PRODUCT):
            a, b = e.args
            return f"({self._src(a)} * {self._src(b)})"
        if isinstance(e, _NEGATION):
            return f"(-{self._src(e.args[0])})"
        if isinstance(e, _DIVISION):
            a, b = e.args
            return f"({self._src(a)} / {self._src(b)})"
        return self._opaque_src(e)

    def _opaque_src(self, e: Any) -> str:
        self._opaque.append(e)
        return f"o[{len(self._opaque) - 1}]"

    def push(self, highs: Any) -> None:
        """Evaluate every item at the Params' current values and push them to ``highs``."""
        v = [p.value for p in self._params]
        if None in v:  # as Pyomo's value() would: never push a NaN for a Param without a value
            name = self._params[v.index(None)].name
            raise ValueError(f"No value for uninitialized parameter {name}")
        o = [value(e) for e in self._opaque]
        out = np.array(self._f(v, o), dtype=np.float64)
        n_coef, n_row, n_col, n_cost = self._n
        coefs = out[:n_coef]
        for r, c, x in zip(
            self._coef_rows.tolist(), self._coef_cols.tolist(), coefs.tolist(), strict=True
        ):
            highs.changeCoeff(r, c, x)
        k = n_coef
        if n_row:
            rows = out[k : k + n_row]
            highs.changeRowsBounds(len(self._rows), self._rows, rows[0::2], rows[1::2])
        k += n_row
        if n_col:
            cols = out[k : k + n_col]
            highs.changeColsBounds(len(self._cols), self._cols, cols[0::2], cols[1::2])
        k += n_col
        if n_cost:
            highs.changeColsCost(n_cost, self._cost_cols, out[k : k + n_cost])
        highs.changeObjectiveOffset(float(out[-1]))
