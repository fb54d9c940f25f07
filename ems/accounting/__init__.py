"""Incentive accounting for Italian renewable energy communities (SPEC §6).

- :mod:`.config` — plants, members, configurations, statute, yearly ARERA parameters (pydantic).
- :mod:`.timeutil` — Europe/Rome local hours (23/25-hour DST days) and ARERA F1/F2/F3 bands.
- :mod:`.readings` — pure parsers of meter and zonal-price CSV text; hourly aggregation.
- :mod:`.rules` — DM MASE 414/2023 TIP, FC, F, ARERA valorisation, sale, surplus rule.
- :mod:`.ledger` — hourly ledger records per configuration, plant and member; versioning.
- :mod:`.statement` — monthly / annual statements, member allocation, CSV and Markdown text.
- :mod:`.service` — ingest / recompute / report use cases over the :class:`LedgerStore` port.

No file or database I/O here: adapters read files and implement :mod:`ems.ports.ledger`.
"""
