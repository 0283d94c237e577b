-- Third-party action types carry the client id and sealed client token their job workers use.
ALTER TABLE action_types ADD COLUMN client_id TEXT;
ALTER TABLE action_types ADD COLUMN client_token_enc BYTEA;
CREATE UNIQUE INDEX action_types_client_id ON action_types (client_id);
