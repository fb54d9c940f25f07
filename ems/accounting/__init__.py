"""Incentive accounting for Italian renewable energy communities (SPEC §6).

- :mod:`.config` — plants, members, configuration types (CER, group of self-consumers, remote
  self-consumer), statute, yearly parameters (pydantic; values come from the data file the
  adapter passes in).
- :mod:`.timeutil` — Europe/Rome local hours (23/25-hour DST days) and ARERA F1/F2/F3 bands.
- :mod:`.readings` — pure parsers of meter and zonal-price CSV text; hourly aggregation.
- :mod:`.rules` — pure rule functions shared with the DESIGN model: TIP, FC, F and its exempt
  energy, surplus per set, ARERA valorisation (+ avoided losses), sale.
- :mod:`.ledger` — hourly ledger records per configuration, plant and member; versioning.
- :mod:`.statement` — monthly / annual statements, member allocation, CSV and Markdown text.
- :mod:`.service` — ingest / recompute / report use cases over the :class:`LedgerStore` port.

No file or database I/O here: adapters read files and implement :mod:`ems.ports.ledger`.
"""
