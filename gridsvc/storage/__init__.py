"""Storage: the database engine (SpatiaLite or PostGIS), ORM models and queries."""
