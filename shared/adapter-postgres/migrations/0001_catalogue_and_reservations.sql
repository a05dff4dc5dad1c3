-- The catalogue (events and their ticket categories) and the persisted reservations.
-- Applied once by `Postgres::migrate`, which records it in `schema_migrations`.

CREATE TABLE events (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    date       timestamptz NOT NULL,
    venue      text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ticket_categories (
    event_id     uuid        NOT NULL REFERENCES events (id),
    name         text        NOT NULL,
    -- Insertion order: `categories()` lists an event's categories in the order they were added.
    position     bigint      GENERATED ALWAYS AS IDENTITY,
    total_stock  integer     NOT NULL CHECK (total_stock >= 0),
    price_cents  bigint      NOT NULL CHECK (price_cents >= 0),
    max_per_user integer     CHECK (max_per_user >= 1),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, name)
);

-- No foreign key to the catalogue: persist must never be stuck on a batch it cannot write,
-- and the stream is the source of truth for what happened to a hold.
CREATE TABLE reservations (
    id         uuid        PRIMARY KEY,
    event_id   uuid        NOT NULL,
    category   text        NOT NULL,
    user_id    text        NOT NULL,
    qty        integer     NOT NULL CHECK (qty > 0),
    status     text        NOT NULL CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- `reservations_of`: reconcile rebuilds each category's counters from its reservations.
CREATE INDEX reservations_by_category ON reservations (event_id, category);
