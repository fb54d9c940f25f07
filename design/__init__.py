"""Design mode: sizing studies, AS-IS baseline, KPIs, reports, sweeps."""
