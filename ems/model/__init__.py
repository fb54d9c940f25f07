"""The one model builder: design (sizes are variables) and operation (sizes are parameters)."""
