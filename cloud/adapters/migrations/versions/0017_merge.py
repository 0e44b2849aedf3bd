"""merge: custody's one open interval, master data proposals, duties and tokens, the keyed
audit chain, accounts and sessions, release
signatures, all from 0015

Revision ID: 0017_merge
Revises: 0016_custody_one_open, 0016_master_data_proposals, 0016_authz_duties_and_tokens,
    0016_audit_keyed_chain, 0016_accounts_sessions_lockout, 0016_release_signatures
"""

revision = "0017_merge"
down_revision = (
    "0016_custody_one_open",
    "0016_master_data_proposals",
    "0016_authz_duties_and_tokens",
    "0016_audit_keyed_chain",
    "0016_accounts_sessions_lockout",
    "0016_release_signatures",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
