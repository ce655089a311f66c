"""The audit log: who read or changed which patient's data, append-only and hash-chained.

Rows are only ever added through ``audit.append`` (SECURITY DEFINER), which chains each row to
the one before it (``hash = sha256(prev_hash || the row)``) under a lock on ``audit.chain``, so
rows from every service form one chain. The services' role gets ``revisit_audit_writer``:
EXECUTE on append and prune, SELECT on the rows, and no INSERT, UPDATE, DELETE or TRUNCATE.
A trigger refuses UPDATE, DELETE and TRUNCATE from anyone, the owner included; only
``audit.prune`` removes rows, the oldest first and never younger than 30 days, and it records
the hash of the last row it removed so the rest still verifies.

Revision ID: audit_0001
Revises:
"""

from alembic import op

revision = "audit_0001"
down_revision = None
branch_labels = None
depends_on = None

ZERO = "'\\x" + "00" * 32 + "'::bytea"

UPGRADE = [
    "CREATE SEQUENCE audit.events_id_seq",
    """
    CREATE TABLE audit.events (
        id bigint PRIMARY KEY,
        at timestamptz NOT NULL,
        service text NOT NULL,
        subject text NOT NULL,
        role text,
        principal_kind text,
        clinic_id text,
        action text NOT NULL,
        method text NOT NULL,
        route text NOT NULL,
        patient_key text,
        object_id text,
        client text,
        status integer NOT NULL,
        prev_hash bytea NOT NULL,
        hash bytea NOT NULL
    )
    """,
    "CREATE INDEX events_clinic_at ON audit.events (clinic_id, at)",
    "CREATE INDEX events_patient_at ON audit.events (patient_key, at)",
    "CREATE INDEX events_subject_at ON audit.events (subject, at)",
    "CREATE INDEX events_at ON audit.events (at)",
    f"""
    CREATE TABLE audit.chain (
        id integer PRIMARY KEY CHECK (id = 1),
        last_id bigint NOT NULL DEFAULT 0,
        last_hash bytea NOT NULL DEFAULT {ZERO},
        anchor_id bigint NOT NULL DEFAULT 0,
        anchor_hash bytea NOT NULL DEFAULT {ZERO}
    )
    """,
    "INSERT INTO audit.chain (id) VALUES (1)",
    # jsonb's text form is canonical (sorted, fixed spacing), so the hash does not depend on
    # the session's settings; the instant is hashed as microseconds since the epoch.
    """
    CREATE FUNCTION audit.row_hash(e audit.events) RETURNS bytea
    LANGUAGE sql STABLE AS $$
        SELECT sha256(e.prev_hash || convert_to(jsonb_build_array(
            e.id, (extract(epoch FROM e.at) * 1000000)::bigint, e.service, e.subject, e.role,
            e.principal_kind, e.clinic_id, e.action, e.method, e.route, e.patient_key,
            e.object_id, e.client, e.status)::text, 'UTF8'))
    $$
    """,
    """
    CREATE FUNCTION audit.append(entries jsonb) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DECLARE
        prev bytea;
        entry jsonb;
        r audit.events;
        n bigint := 0;
    BEGIN
        SELECT last_hash INTO prev FROM audit.chain WHERE id = 1 FOR UPDATE;
        FOR entry IN SELECT value FROM jsonb_array_elements(entries) LOOP
            r := jsonb_populate_record(NULL::audit.events, entry);
            r.id := nextval('audit.events_id_seq');
            r.at := coalesce(r.at, clock_timestamp());
            r.prev_hash := prev;
            r.hash := audit.row_hash(r);
            INSERT INTO audit.events VALUES (r.*);
            prev := r.hash;
            n := n + 1;
        END LOOP;
        IF n > 0 THEN
            UPDATE audit.chain SET last_id = r.id, last_hash = prev WHERE id = 1;
        END IF;
        RETURN n;
    END $$
    """,
    """
    CREATE FUNCTION audit.prune(keep_days integer) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DECLARE
        first_kept bigint;
        last_gone audit.events;
        n bigint;
    BEGIN
        IF keep_days < 30 THEN
            RAISE EXCEPTION 'audit rows are kept at least 30 days (asked for %)', keep_days;
        END IF;
        PERFORM 1 FROM audit.chain WHERE id = 1 FOR UPDATE;
        SELECT min(id) INTO first_kept FROM audit.events
            WHERE at >= clock_timestamp() - make_interval(days => keep_days);
        -- Only a prefix goes, so what is left still chains from one recorded hash.
        SELECT * INTO last_gone FROM audit.events
            WHERE first_kept IS NULL OR id < first_kept ORDER BY id DESC LIMIT 1;
        IF last_gone.id IS NULL THEN
            RETURN 0;
        END IF;
        PERFORM set_config('audit.pruning', 'on', true);
        DELETE FROM audit.events WHERE id <= last_gone.id;
        GET DIAGNOSTICS n = ROW_COUNT;
        PERFORM set_config('audit.pruning', 'off', true);
        UPDATE audit.chain SET anchor_id = last_gone.id, anchor_hash = last_gone.hash
            WHERE id = 1;
        RETURN n;
    END $$
    """,
    """
    CREATE FUNCTION audit.refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'events'
           AND current_setting('audit.pruning', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'the audit log is append-only: % on audit.% refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON audit.events "
    "FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()",
    "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.events "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()",
    "CREATE TRIGGER chain_kept BEFORE DELETE ON audit.chain "
    "FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()",
    "CREATE TRIGGER chain_no_truncate BEFORE TRUNCATE ON audit.chain "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()",
    "REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM PUBLIC",
    "REVOKE ALL ON FUNCTION audit.append(jsonb), audit.prune(integer) FROM PUBLIC",
    # The services' role is granted this one; a cluster where the migrating role may not
    # create roles gets a notice, and the grants are then an operator's (docs/security).
    """
    DO $$
    BEGIN
        BEGIN
            CREATE ROLE revisit_audit_writer NOLOGIN;
        EXCEPTION
            WHEN duplicate_object THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role revisit_audit_writer; grant audit rights by hand';
                RETURN;
        END;
        GRANT USAGE ON SCHEMA audit TO revisit_audit_writer;
        GRANT SELECT ON audit.events, audit.chain TO revisit_audit_writer;
        GRANT EXECUTE ON FUNCTION audit.append(jsonb), audit.prune(integer)
            TO revisit_audit_writer;
    END $$
    """,
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE audit.events, audit.chain CASCADE")
    op.execute("DROP FUNCTION audit.append(jsonb), audit.prune(integer), audit.refuse_change()")
    op.execute("DROP SEQUENCE audit.events_id_seq")
