"""Load generator and throwaway servers for load and fault runs (docs/reliability.md)."""
