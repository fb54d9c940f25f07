"""Technologies: one module each, all behind :class:`ems.techs.base.Technology`."""
