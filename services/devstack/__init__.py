"""The whole Gridlease stack on one machine (`gridlease dev up|down|status|demo`)."""
