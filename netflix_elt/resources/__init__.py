"""Resources: object stores, the MovieLens source, warehouses. Built by ``factory``."""
