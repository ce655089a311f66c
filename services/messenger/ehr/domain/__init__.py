"""Pure core of the EHR write side: no database, HTTP or broker imports in this package."""
