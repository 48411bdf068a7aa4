"""HTTP <-> domain. One router module per resource; nothing here holds domain logic."""
