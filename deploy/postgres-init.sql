-- The role the mesh connects as: it owns its database (and so runs the migrations), but is
-- neither superuser nor BYPASSRLS, so row-level security binds every service's transactions.
CREATE ROLE creditmesh LOGIN PASSWORD 'creditmesh' NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;
CREATE DATABASE creditmesh OWNER creditmesh;
