"""File I/O for incentive accounting: the YAML configuration, meter / price CSV files, and the
statement files (CSV, Markdown, PNG chart). Parsing and rules live in :mod:`ems.accounting`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from adapters.yaml_load import safe_load
from ems.accounting.config import (
    AccountingConfig,
    ValorisationParams,
    parse_accounting_config,
    parse_year_parameters,
)
from ems.accounting.readings import ParseResult, RowError, parse_csv
from ems.accounting.statement import (
    Statement,
    configurations_csv,
    daily_csv,
    gse_csv,
    members_csv,
    missing_csv,
    plants_csv,
    render_markdown,
)
from ems.errors import ConfigError, DataError

#: The shipped yearly parameters (valorisation, avoided losses, GSE fees), package data of ``ems``.
PARAMETERS_FILE = (
    Path(__file__).resolve().parent.parent / "ems" / "data" / "accounting_parameters.yaml"
)


def load_year_parameters(path: str | Path = PARAMETERS_FILE) -> dict[int, ValorisationParams]:
    """Read the yearly-parameter data file (see ``ems/data/accounting_parameters.yaml``)."""
    p = Path(path)
    try:
        data = safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(p), "(file)", f"cannot be read: {exc}") from None
    return parse_year_parameters(data, str(p))


def load_config(path: str | Path) -> AccountingConfig:
    """Read and validate the accounting YAML, with the shipped yearly parameters as defaults;
    every problem is a one-line ConfigError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(p), "(file)", "not found (give --config or set EMS_ACCOUNTING_CONFIG)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), "(file)", f"cannot be read: {exc}") from None
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(yaml)"
        raise ConfigError(str(p), where, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_accounting_config(data, str(p), load_year_parameters())


def read_input(
    path: str | Path, pod_roles: Mapping[str, frozenset[str]], issued: str = ""
) -> ParseResult:
    """Parse one meter or zonal-price CSV; an unreadable file is one error at line 0. The result
    carries the file's content hash (replays are no-ops) and its ``issued`` date (rettifica)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        return ParseResult(
            str(p), "meter", errors=[RowError(str(p), 0, f"cannot be read: {exc.strerror}")]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # Italian distributor exports are often Windows-1252/latin-1
    res = parse_csv(text, str(p), pod_roles)
    res.sha256 = hashlib.sha256(raw).hexdigest()
    if res.issued and issued and res.issued != issued:
        res.errors.append(
            RowError(
                str(p),
                1,
                f"the file says it was issued {res.issued}, --issued says {issued}; "
                "nothing of it was read",
            )
        )
        res.readings.clear()
    res.issued = res.issued or issued
    return res


def write_report(
    out_dir: str | Path, community: str, statements: Sequence[Statement]
) -> list[Path]:
    """Write the statement files into ``out_dir``; return their paths (Markdown first)."""
    if not statements:
        raise DataError("no configurations to report")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{out}: cannot create the output directory ({exc.strerror})") from None
    period = statements[0].period
    stem = f"statement_{period}"
    charts: dict[str, str] = {}
    written: list[Path] = []
    for s in statements:
        name = f"{stem}_{s.config_id}_daily.png"
        _chart(s, out / name)
        charts[s.config_id] = name
        written.append(out / name)
    files = {
        f"{stem}_configurations.csv": configurations_csv(statements),
        f"{stem}_plants.csv": plants_csv(statements),
        f"{stem}_members.csv": members_csv(statements),
        f"{stem}_daily.csv": daily_csv(statements),
        f"{stem}_missing.csv": missing_csv(statements),
        f"{stem}_gse.csv": gse_csv(statements),
    }
    md = out / f"{stem}.md"
    md.write_text(render_markdown(community, statements, charts), encoding="utf-8")
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return [md, *written]


def _chart(s: Statement, path: Path) -> None:
    """Bars: daily shared energy (kWh, complete hours); line: daily TIP + valorisation (€)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    days = [d.day for d in s.daily]
    shared = [d.shared_wh / 1000 for d in s.daily]
    eur = [float(d.tip_eur_exact + d.valorisation_eur_exact) for d in s.daily]
    colours = ["#4c8c4a" if d.complete_hours == d.hours else "#e0a526" for d in s.daily]
    fig, ax = plt.subplots(figsize=(10, 4.4) if not s.annual else (12, 4.4), dpi=100)
    ax.bar(days, shared, color=colours)
    handles = [Patch(color="#4c8c4a", label="shared energy (kWh)")]
    if any(d.complete_hours < d.hours for d in s.daily):
        handles.append(
            Patch(color="#e0a526", label="day with incomplete data (complete hours only)")
        )
    ax.set_ylabel("shared energy, kWh")
    ax2 = ax.twinx()
    ax2.plot(
        days,
        eur,
        color="#c0392b",
        marker="." if not s.annual else None,
        label="TIP + valorisation (€)",
    )
    ax2.set_ylabel("incentive, €")
    ax2.set_ylim(bottom=0)
    ax.set_title(f"{s.config_id} — {s.period}: daily shared energy and incentive (complete hours)")
    handles += ax2.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.autofmt_xdate()
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path)
    plt.close(fig)
