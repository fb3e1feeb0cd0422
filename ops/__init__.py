"""Operations tooling: local Typesense cluster for development and tests."""
