"""The PostgreSQL backend: our tables, LangGraph's Postgres checkpointer and store, one pool.
Needs the `postgres` extra (psycopg, psycopg-pool, langgraph-checkpoint-postgres)."""

from agent_runtime.storage.postgres.backend import PostgresStorage

__all__ = ["PostgresStorage"]
