/*
 * main.c: `kopilka`, the one binary: server and command-line tool. Finds the
 * command, prints help, and hands over to the command's function.
 */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const kp_command commands[] = {
    {"init", "kopilka init DB --program FILE",
     "Creates a new database at DB and loads the program FILE as version 1. DB is a SQLite "
     "file (created, with its key file DB.key beside it) or, in every command, a PostgreSQL "
     "location postgresql://USER@HOST/NAME (the database must exist; init creates Kopilka's "
     "tables in it, and the key file is the path in $KOPILKA_KEY_FILE, which every command "
     "on that database then needs).", cmd_init},
    {"program load", "kopilka program load DB FILE [--activate-at TIME] [--now TIME]",
     "Validates the program FILE (every error is printed, each with its field) and loads it as "
     "a new version; prints the version. Without --activate-at it runs at once: a running "
     "server uses it within a second. With --activate-at (RFC 3339, from 5 seconds to 10 "
     "years ahead) it is scheduled: every server switches to it at that instant without a "
     "restart, and operations record the version they ran with. A version loaded at once, or "
     "scheduled at or after a version already scheduled, is refused while that one waits (it "
     "would never run): cancel it first. Audited (program.load, by the operating-system "
     "user). --now fixes the clock (RFC 3339) for tests.",
     cmd_program_load},
    {"program list", "kopilka program list DB [--now TIME]",
     "Lists the program versions, newest first, one a line (tab-separated, with a header): "
     "version, name, loaded at, loaded by, activates at (- for at once) and state: running "
     "(operations use it now), scheduled (it takes over at its time), past, or cancelled. "
     "--now fixes the clock (RFC 3339) for tests.",
     cmd_program_list},
    {"program cancel", "kopilka program cancel DB --version N [--now TIME]",
     "Cancels scheduled version N before it takes effect; one that has taken effect (or does "
     "within 5 seconds) never can be: load the program you want instead. Audited "
     "(program.cancel). --now fixes the clock (RFC 3339) for tests.",
     cmd_program_cancel},
    {"terminal add", "kopilka terminal add DB --store NAME",
     "Creates a terminal (a till) of store NAME and prints its API key, once. Only a hash of "
     "the key is stored. The till sends it as `Authorization: Bearer KEY`. Audited "
     "(terminal.add).",
     cmd_terminal_add},
    {"terminal list", "kopilka terminal list DB",
     "Lists the terminals, one a line (tab-separated, with a header): id, store, state "
     "(active or revoked), created, rotated, last used and revoked times (RFC 3339, - for "
     "never). A running server writes \"last used\" every 10 seconds and when it stops, so "
     "it may lag by that much.",
     cmd_terminal_list},
    {"terminal revoke", "kopilka terminal revoke DB --id N",
     "Revokes terminal N: its key is refused (401) from now on, also by a running server "
     "(within a millisecond). Cannot be undone: add a new terminal instead. Audited "
     "(terminal.revoke).",
     cmd_terminal_revoke},
    {"terminal rotate", "kopilka terminal rotate DB --id N",
     "Gives terminal N a new key and prints it, once; the old key is refused from now on, "
     "as a revoked one is. Audited (terminal.rotate).",
     cmd_terminal_rotate},
    {"cards issue", "kopilka cards issue DB --count N [--batch NAME]",
     "Issues N new cards (1 to 10 000 000), each with its own account, and prints one number "
     "a line (13 digits, the last a Luhn check digit). Issued cards earn and burn at the till "
     "at once. --batch records them as a named batch for the printer (`kopilka cards export`). Writes in "
     "chunks of about 5 ms, so a running server's tills are not held; progress on stderr.",
     cmd_cards_issue},
    {"cards export", "kopilka cards export DB --batch NAME --out DIR",
     "Writes, per card of the batch, a Code 128 barcode and a QR code as PNG and SVG "
     "(DIR/NUMBER-barcode.png, ...), and DIR/cards.csv naming them "
     "(number,batch,state,barcode_png,barcode_svg,qr_png,qr_svg); progress on stderr.",
     cmd_cards_export},
    {"staff add", "kopilka staff add DB --login L --role R [--partner CODE] [--password-file F]",
     "Adds a staff member with role R (cashier, manager, call_centre, marketer, admin, auditor, "
     "partner; a partner needs --partner, the code of a partner of the running program). The "
     "password (10 to 128 bytes) is read from the first line of F; without --password-file it "
     "is asked on the terminal, twice and without echo, or read from the first line of stdin when that is not a "
     "terminal; only its Argon2id hash is stored. Staff log in at POST /v1/admin/login.",
     cmd_staff_add},
    {"import",
     "kopilka import DB [--cards F.csv] [--customers F.csv] [--balances F.csv] [--sales F.csv] "
     "[--card-transactions F.csv [--bank CODE]]",
     "Imports cards, customers and opening balances from CSV (docs/import.md); --sales, alone, "
     "imports the sales history (receipts' lines, with or without a card). Every row of "
     "every file is checked first and each bad one reported with its line; nothing is written "
     "unless all are good. Then rows are written in chunks of about 5 ms (a running server's "
     "tills are not held); progress on stderr. Rows already imported are skipped: running it "
     "again changes nothing, and completes an import that was cut short; a known customer (by "
     "external_id, or id) whose personal data changed is updated, audited. A customers file "
     "written by `kopilka export` imports back. Opening balances are ledger postings from "
     "program:opening. --card-transactions, alone, credits a co-branded card's cashback "
     "(id,at,card,amount,currency,merchant: docs/coalition.md) from the program's bank partner "
     "(--bank when it has several), each transaction once, all or nothing.",
     cmd_import},
    {"history generate",
     "kopilka history generate --seed N --out FILE [--cards-out FILE] [--members N] "
     "[--non-members N] [--months N] [--start YYYY-MM-DD] [--stores N] [--returns SHARE]",
     "Writes a synthetic sales history of an auto service (labor, parts, oil, tires, wash) to "
     "FILE in the sales CSV of docs/analytics.md, for `kopilka import DB --sales FILE`: "
     "receipts of 1 to 5 lines over --months months (13 to 240, default 24) from --start "
     "(default 2024-01-01), with month and weekday seasonality, in --stores stores (default "
     "3, named store-1...), of --members card holders (default 2000, cards HG-00000001...) "
     "and --non-members customers without a card (default 8000), and --returns of the "
     "receipts (default 0.02, or 2%) returned 1 to 14 days later. The same seed and options "
     "give the same bytes. The four figures of docs/analytics.md \"Synthetic history\" hold "
     "by construction: members' average receipt 2.6 times non-members', the top 10% of "
     "non-members by spend give 25% of their revenue, 37% of members bought almost nothing "
     "and give 6% of members' revenue, 70% of members bought in the last 12 months; they are "
     "measured on the output and printed. --cards-out writes the members' cards (cards.csv "
     "of docs/import.md) for `kopilka import DB --cards FILE`. Progress goes to stderr.",
     cmd_history_generate},
    {"export", "kopilka export DB (--customers FILE | --balances FILE)",
     "Writes customers (with their personal data, so the file is made readable by its owner "
     "only) or cards and balances as CSV.",
     cmd_export},
    {"phones migrate", "kopilka phones migrate DB [--dry-run]",
     "Reads every stored phone again and rewrites in E.164 those stored the old way (\"+\" and "
     "the digits as typed: 8 916 ... became +8916...), reading digits typed without + in the "
     "program's country; each blind index follows. Phones that are no valid number, or "
     "whose E.164 form another customer has, are left and listed. Needs the key file DB.key. "
     "--dry-run counts and lists, writes nothing. Running it again changes nothing.",
     cmd_phones_migrate},
    {"serve", "kopilka serve DB [--listen HOST:PORT] [--readers N] [--http-threads N] "
              "[--now TIME] [--tick SECONDS] [--access-log off|stderr|FILE] "
              "[--request-timeout SECONDS] [--idle-timeout SECONDS] "
              "[--connections-per-address N] [--metrics local|on|off] [--notify FILE] "
              "[--trust-proxy]",
     "Serves the POS API (docs/api.md) on HOST:PORT (default 127.0.0.1:8080) until SIGINT or "
     "SIGTERM. Purchases and returns are answered only once durable: in groups, through "
     "the operation log DB.oplog-0/-1 (replayed after a crash by the next server or CLI "
     "command that opens DB; docs/architecture.md). At start it checks the database file "
     "(SQLite quick_check) and refuses a damaged one (a file over 1 GB, "
     "KOPILKA_FILE_CHECK_AT_START_MAX bytes, is checked beside the tills instead: damage "
     "found then refuses every write, GET /health says why), or an operation log damaged in "
     "its middle (see `kopilka recover --help`). On a PostgreSQL location "
     "(postgresql://...) each group is a COMMIT on one of KOPILKA_PG_WRITERS writer "
     "connections (1 to 32, default 4), several servers may serve one database, and the "
     "key file is KOPILKA_KEY_FILE (README, \"SQLite or PostgreSQL\"). GET /live, /ready "
     "and /health report its state (docs/api.md). "
     "--http-threads sets the event-loop threads that answer HTTP (1 to 64, default 4; "
     "routes other than purchases and returns run on four threads of their own, so a slow "
     "back-office request does not stall the tills); "
     "--readers the read connections for quotes and lookups (1 to 64, default 8). --now "
     "fixes the clock (RFC 3339) for tests. A scheduler runs due time-driven work (expiry, "
     "birthdays, tenure, tier reviews) at start and every --tick seconds (default 60; 0 = "
     "off). "
     "--access-log: one JSON line a request (time, method, route, status, latency_us, store, "
     "request_id; never bodies, card numbers or personal data) to stderr (the default), to "
     "FILE (appended) or off. Slow clients: a connection must deliver each whole request "
     "within --request-timeout seconds (1 to 3600, default 30) of opening or of its previous "
     "answer, else it is closed (so an idle keep-alive connection is closed after it too); "
     "--idle-timeout seconds (default 60) bounds a connection without any traffic, such as a "
     "client that stops reading an answer; one client address may hold --connections-per-address connections (1 to "
     "2048, default 256; tests and the benchmark use up to about 100 from 127.0.0.1), one "
     "more is answered 503 too_many_connections and closed. GET /metrics: the Prometheus "
     "text format (requests by route and status, latencies, the writer's groups and queue, "
     "file sizes, scheduler runs; docs/api.md \"Metrics\"), without credentials; --metrics "
     "local (the default) answers it to loopback clients only and 403 to others, on to "
     "anyone (keep the port from the public), off answers 404. "
     "Notifications (docs/notifications.md): the server empties the outbox itself: a "
     "dispatch thread turns the events of purchases, returns, grants... into messages "
     "(every 150 ms, and within about 100 ms of a purchase), and each channel's delivery "
     "workers (its \"concurrency\": e-mail 4, SMS 8, webhooks 8) send them, with retries "
     "(backoff and jitter), dead letters and the channel's rate limit shared by its workers; "
     "a crash re-sends at most the messages in flight. --notify FILE configures "
     "the channels (SMTP e-mail, an SMS gateway, webhook options, retries; read at start, "
     "refused with the field named if wrong); without it only webhooks are delivered (to "
     "endpoints set in the back office), e-mail and SMS are not configured. E-mail and SMS "
     "need the key file (their recipients are sealed). GET /metrics shows the outbox "
     "(kopilka_outbox_*). SIGTERM lets the sends in flight finish or time out. "
     "Logins are limited per client address (docs/api.md \"Login limits\"): behind a proxy "
     "every connection comes from the proxy, so give --trust-proxy there to take the "
     "client's address from the last entry of X-Forwarded-For (which nginx appends); never "
     "without a proxy, as a client could then name any address.",
     cmd_serve},
    {"deliver", "kopilka deliver DB [--notify FILE] [--once] [--now TIME]",
     "Empties the outbox from the command line, as the server's notifier does: dispatches "
     "pending events into messages, then sends the messages due at TIME (default: now) on "
     "every configured channel (--notify FILE as for serve; without it webhooks only), "
     "settling each (sent; retried later with backoff; dead after the retry limit or a "
     "permanent refusal). Without --once it repeats until nothing is due (messages waiting "
     "for a later retry or for the end of quiet hours are left for later) or SIGINT/SIGTERM "
     "(sends in flight finish first); with --once it makes one dispatch pass and one delivery "
     "pass a channel. Prints what it did, per channel. Safe beside a running server: "
     "messages are leased, so the server and this command never send the same message at "
     "once. On SQLite every step is a short transaction of its own that takes the "
     "database's write lock between two of the server's commits (each step waits for it up "
     "to 10 s, about 0.5 s at most under load; the server's tills wait for this command's "
     "step only as long as the step, a few milliseconds; sending happens outside any "
     "transaction). Exits 0 when every step succeeded, 1 when one failed (a message it could "
     "not settle is sent again once its lease ends).",
     cmd_deliver},
    {"simulate",
     "kopilka simulate --history FILE.csv|DB --program FILE.json [--baseline FILE.json] "
     "[--redemption R] [--from DATE] [--to DATE] [--threads N] [--json]",
     "The economic model (docs/analytics.md): replays every receipt of a sales history (the "
     "sales CSV: at,store,receipt,card,kind,sku,category,amount,qty; or a database: its "
     "ledger's purchases and returns and its sales) through the engine and ledger a till uses, each card's account in memory and its points expiring as time "
     "passes, under the candidate program and the baseline side by side. The scheduler's work "
     "is replayed with its own functions: tier reviews move cards between tiers, birthday and "
     "tenure grants are given (a birthday only where the history knows it: the ledger's "
     "members with a recorded birthday, never imported cards or a CSV, whose cards without "
     "one are counted; tenure from the account's creation, else from the card's first "
     "receipt). With --redemption "
     "R (0..1) each member burns at each purchase the share R of what the rules allow, "
     "rounded down; without it, what the ledger burnt (a database) or nothing (a CSV). "
     "Prints month by month the revenue, discounts, points issued, "
     "burnt and expired, the liability, the cost as a share of revenue and the margin impact, "
     "and the rules that cost most, net of returns (a return takes its points back from the "
     "rules that gave them); --json for machines. --threads N (default 2) splits the "
     "cards; the result is the same for any N.",
     cmd_simulate},
    {"segment count", "kopilka segment count DB FILTER_JSON",
     "Counts the customers a segment's filter finds now (docs/marketing.md, \"The filter\") "
     "and prints {\"filter\", \"count\", \"sample\"} as POST /v1/admin/segments/preview does. "
     "A filter over attributes or birthdays needs the key file.",
     cmd_segment_count},
    {"campaign list", "kopilka campaign list DB",
     "Prints the campaigns, newest first, as GET /v1/admin/campaigns does.", cmd_campaign_list},
    {"campaign show", "kopilka campaign show DB ID",
     "Prints a campaign with its progress (members pending, granted, over budget, held out, "
     "skipped; points; messages sent), and for a grant by a program rule the rule and the "
     "program version pinned at its start. A server's scheduler runs campaigns.",
     cmd_campaign_show},
    {"campaign results", "kopilka campaign results DB ID [--window-days N]",
     "Prints a campaign's results: grants, points, the points of its lots spent and "
     "expired, messages, and the "
     "revenue per customer of the targeted and control groups N days (default 30) before "
     "and after its start.",
     cmd_campaign_results},
    {"catalog list", "kopilka catalog list DB",
     "Prints every item of the rewards catalog (docs/marketing.md \"Rewards catalog\"), "
     "active or not, with its stock by store, as GET /v1/catalog?all=1 does.",
     cmd_catalog_list},
    {"catalog orders",
     "kopilka catalog orders DB [--state ordered|ready|handed_over|cancelled] [--store S] "
     "[--card C] [--before ID] [--limit N]",
     "Prints the catalog's orders, newest first, as GET /v1/orders does for the back office: "
     "N (1 to 200, default 50) of them, before order ID when given; next_before pages on.",
     cmd_catalog_orders},
    {"catalog order-state", "kopilka catalog order-state DB ORDER ready|handed-over|cancel",
     "Moves order ORDER as the back office does: ready (from ordered; the customer is told), "
     "handed-over (from ordered or ready) or cancel (before it is handed over: the stock and "
     "the points go back, the customer is told). Prints the order. Audited "
     "(catalog.order_state) as the operating-system user.",
     cmd_catalog_order_state},
    {"draw create",
     "kopilka draw create DB --name N --from TIME --to TIME [--rule spend --per-minor M | "
     "--rule visit] [--store S] [--tier T] --prize NAME:COUNT [--prize ...]",
     "Creates a prize draw (docs/marketing.md \"Prize draws\"): purchases from <= at < to "
     "count, one entry per M minor units spent net of returns (spend) or per receipt (visit), "
     "at store S and for tier T only when given; prizes in the order they are drawn. A random "
     "seed is drawn and sealed with the key file; its SHA-256, the commitment, is printed "
     "with the draw and never changes. Audited (draw.create).",
     cmd_draw_create},
    {"draw close", "kopilka draw close DB ID",
     "Closes draw ID after its period: the entries are computed from the ledger and frozen "
     "(anonymised participants and their counts), the winners drawn by the published "
     "procedure, and the seed revealed. Prints the public JSON (as GET /v1/draws/{id}). A "
     "second close prints the same result. Audited (draw.close).",
     cmd_draw_close},
    {"draw show", "kopilka draw show DB ID", "Prints the public JSON of draw ID.",
     cmd_draw_show},
    {"draw list", "kopilka draw list DB",
     "Lists the draws, newest first: id, state, period, commitment, name.", cmd_draw_list},
    {"draw verify", "kopilka draw verify FILE",
     "Verifies a closed draw from its published JSON alone (GET /v1/draws/{id}, or `draw "
     "show`): the seed against the commitment, the entries' order, total and digest, and "
     "every winner recomputed by the procedure. Exit 0 and \"verified\", or exit 1 with a "
     "MISMATCH line naming each field that does not match.",
     cmd_draw_verify},
    {"settlement periods", "kopilka settlement periods DB [--now TIME]",
     "Lists a coalition's settlement periods (docs/coalition.md \"Periods and statements\"): "
     "the open ones (with entries, the last month and the current one) and whether each may be closed, "
     "then the closed ones, newest first, with their statements' numbers. JSON, as GET "
     "/v1/admin/settlement/periods.",
     cmd_settlement_periods},
    {"settlement show", "kopilka settlement show DB --period YYYY-MM [--csv [--matrix]] [--now TIME]",
     "Prints a period's statements (one per party and currency) and its matrix (who owes whom) "
     "as JSON: a closed period's as stored, an open one's computed now (\"state\": \"open\", "
     "without numbers). --csv: one line per statement; --csv --matrix: one line per payer "
     "and payee.",
     cmd_settlement_show},
    {"settlement close", "kopilka settlement close DB --period YYYY-MM [--now TIME]",
     "Closes a period once its month has ended in the program's calendar, and the earlier "
     "periods with entries are closed: its statements are numbered and stored, never to "
     "change; later entries of the month land in the next open period. A closed period "
     "prints its statements again. Audited (settlement.close).",
     cmd_settlement_close},
    {"settlement statement", "kopilka settlement statement DB NUMBER [--csv]",
     "Prints statement NUMBER as stored (JSON), or with --csv as lines field,value.",
     cmd_settlement_statement},
    {"tick", "kopilka tick DB [--now TIME]",
     "Runs the time-driven work due at TIME (default: now) as the server's scheduler does: "
     "expiry of points, birthday and tenure grants, tier reviews; each due item exactly once, "
     "missed days and reviews caught up in order, each run recorded (`kopilka jobs`).",
     cmd_tick},
    {"event", "kopilka event DB --card N --type T --id ID [--store S] [--value V] [--token X] "
              "[--now TIME]",
     "Applies an external event to a card as POST /v1/events does from the back office "
     "(survey, partner_card, a custom type with --value): the program's event_sources must "
     "let the back office send type T (birthday, tenure and registration never: the scheduler "
     "and registration raise them), and its grant rules on T decide the points. Idempotent by "
     "(store, id); store defaults to \"cli\". Prints the answer. Audited (event.apply, by the "
     "operating-system user).",
     cmd_event},
    {"discount set", "kopilka discount set DB --card N --percent P",
     "Sets the individual discount of the card's account (seed 003: from 100 000 of "
     "accumulated spend, a rate set per customer); P from 0 to 100, at most 2 decimals. "
     "Audited (discount.set). The back office: POST /v1/admin/cards/N/discount.",
     cmd_discount_set},
    {"discount clear", "kopilka discount clear DB --card N",
     "Removes the individual discount of the card's account. Audited (discount.clear).",
     cmd_discount_clear},
    {"birthday set", "kopilka birthday set DB --card N --date YYYY-MM-DD",
     "Records the birthday of the card's customer for the program's birthday grants; a "
     "date in the future is refused. A card with a customer record gets it in the record "
     "(sealed, as PATCH /v1/admin/customers/ID does: one source of truth); a card nobody "
     "registered yet gets only a keyed hash of the month and day until its registration, "
     "whose record then decides (its birthday, or none). Audited. The key file DB.key is made only for a database "
     "that holds nothing sealed yet; if it is missing otherwise, the command refuses and "
     "says how to restore it.",
     cmd_birthday_set},
    {"jobs", "kopilka jobs DB [--limit N]",
     "Lists the scheduler's recent job runs, newest first: id, job, due item, when it ran, "
     "accounts touched, what it did.",
     cmd_jobs},
    {"verify", "kopilka verify DB [--full]",
     "Checks the database file with SQLite's quick_check (every page and record readable), "
     "or with --full its integrity_check (also every index against its table; slower), "
     "then every ledger invariant: each operation's postings sum to zero, every balance "
     "equals the replay of its postings and its lots less debt, no lot is outside 0..amount; "
     "and the audit log's hash chain: no entry changed, removed or out of order; with the "
     "key file DB.key at hand, the audit entries' MACs too (a chain rewritten without the "
     "key shows there). "
     "Prints each problem; exits 1 if there is any, 0 if none.",
     cmd_verify},
    {"backup", "kopilka backup DB OUT",
     "Copies the database DB to OUT (a new file) while a server may be serving it: its pages "
     "in one snapshot through SQLite's backup API (a reader never blocks the server's "
     "writer) and every purchase and return acknowledged before the backup began (from the "
     "operation log, replayed into the copy). The key file DB.key is copied to OUT.key "
     "(mode 0600); then the copy is checked as `kopilka verify OUT` does. Exits 0 when the "
     "copy is whole and verifies. To restore: stop the server, move DB, its DB.oplog-0/-1 "
     "and DB.key aside, copy OUT to DB and OUT.key to DB.key, start the server (README). "
     "A PostgreSQL database is backed up with pg_dump or pg_basebackup instead "
     "(docs/deploy.md).",
     cmd_backup},
    {"migrate", "kopilka migrate FROM.db postgresql://… [--key-out FILE]",
     "Moves the SQLite database FROM.db, with everything in it, into an empty PostgreSQL "
     "database (made with CREATE DATABASE; Kopilka's schema is created there): every table "
     "copied with COPY in one transaction, ids kept. FROM.db must be at rest: no server "
     "serving it and nothing left in its operation log (else run `kopilka recover FROM.db` "
     "first); a target that already holds Kopilka data is refused. Before the commit, "
     "verify runs on both sides (ledger, audit chain, the audit MACs with the key file) and "
     "the totals must match (accounts, sum of balances, operations, postings, lots, "
     "customers, audit entries and the chain's head hash); any difference rolls the whole "
     "copy back. Progress on stderr, each table's rows on stdout. The personal-data key "
     "file FROM.db.key is not stored in PostgreSQL: --key-out copies it to FILE (a new "
     "file, mode 0600); either way the command says which file KOPILKA_KEY_FILE must name "
     "for the server and commands on the target. Exits 0 when committed, 1 when nothing "
     "was.",
     cmd_migrate},
    {"recover", "kopilka recover DB [--accept-loss [--salvage]]",
     "Replays the operation log into DB, as every command and the server do at start. When "
     "the log is damaged in its middle (a record that cannot be read with readable records "
     "numbered after it: not the torn tail a crash leaves), the server and every command "
     "refuse to start rather than lose those acknowledged operations; this command then "
     "explains which records would be lost. Keep a copy of DB and DB.oplog-0/-1 first; with "
     "--accept-loss it keeps the operations before the damage, prints one LOST line per "
     "readable record after it (sequence number, purchase or return, store, card, receipt: "
     "their tills send them again, and as the database does not hold them they are priced "
     "anew), drops them and empties the log. With --salvage it applies them instead, each at "
     "the time and program version it ran with, and prints SALVAGED lines (saying whether "
     "the answer is the one the till was given: a balance lacking the unreadable record's "
     "points is not) or LOST ones with the reason (a return of the unreadable purchase, "
     "say); only the records that cannot be read are then lost. Exits 0 when recovered, 1 "
     "when not.",
     cmd_recover},
    {"lots merge", "kopilka lots merge DB [--now TIME]",
     "Repairs accounts with more than 512 open lots (written before the ledger kept an "
     "account at 512; the server refuses to work on them with \"more than 512 open lots\"): "
     "merges each one's lots of the same kind and pending state, nearest expiries first, the "
     "merged lot keeping the later expiry, until 512 remain. Balances and postings do not "
     "change; prints each account. --now (RFC 3339, default now) decides which lots are "
     "pending. Run it with the server stopped.",
     cmd_lots_merge},
    {"demo", "kopilka demo [--db PATH] [--listen HOST:PORT]",
     "Creates a demo database (default kopilka-demo.db) with the example program of seed 004 "
     "case 1, a terminal and five cards, prints them with a sample curl command, and serves on "
     "localhost. The terminal key and the cards are kept in DB.demo (mode 0600; only a hash "
     "of a key is in the database), so a second run reuses the database, the terminal and the "
     "cards, adds nothing, and prints a curl with a new receipt number "
     "(R-<unix time>-<process id>).",
     cmd_demo},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f)
{
    fprintf(f, "kopilka %s: a loyalty-program processing center\n\nUsage:\n", KOPILKA_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %s\n", commands[i].usage);
    fprintf(f, "  kopilka --version\n\n`kopilka COMMAND --help` tells more of each.\n");
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
    return false;
}

/* ---- the shared argument check: what a command's usage line allows.
 *
 * Every command's arguments are checked here, against its usage line, before
 * the command runs, so one rule holds for all of them: an option the usage
 * line does not name, an option without its value (or a flag given one) and a
 * positional argument past those the line names are refused with a message
 * that says which argument and what is allowed. The usage line is the
 * specification: `--name VALUE` takes a value, `[--name]` alone is a flag,
 * every other word (DB, FILE) is a positional argument; `[...]` and `(a | b)`
 * only group. */

enum { SPEC_OPTIONS_MAX = 32, SPEC_NAME_MAX = 40 };

typedef struct usage_spec {
    size_t n_options;
    struct {
        char name[SPEC_NAME_MAX];
        char value[SPEC_NAME_MAX]; /* "FILE": what its value is called */
        bool takes_value;
        bool required; /* outside [ ] and ( ) in the usage line */
    } options[SPEC_OPTIONS_MAX];
    int positional_max;
    int positional_min;                          /* arguments outside [ ] */
    char positional_names[4][SPEC_NAME_MAX];     /* "DB", "OUT" */
} usage_spec;

/* How many of `marks` a word opens with (at its start) or closes with. */
static int marks_at_start(const char *w)
{
    int n = 0;
    while (w[n] == '[' || w[n] == '(') n++;
    return n;
}

static int marks_at_end(const char *w)
{
    int n = 0;
    size_t len = strlen(w);
    while (len > 0 && (w[len - 1] == ']' || w[len - 1] == ')')) {
        n++;
        len--;
    }
    return n;
}

/* Copies the next space-separated word of *text into word; false at the end. */
static bool next_word(const char **text, char *word, size_t size)
{
    const char *p = *text;
    while (*p == ' ') p++;
    if (*p == '\0') return false;
    size_t n = 0;
    while (p[n] && p[n] != ' ') n++;
    snprintf(word, size, "%.*s", (int)n, p);
    *text = p + n;
    return true;
}

/* The word without the grouping marks around it: "[--batch" -> "--batch". */
static const char *word_core(char *word)
{
    char *p = word;
    while (*p == '[' || *p == '(') p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ']' || p[n - 1] == ')')) p[--n] = '\0';
    return p;
}

static void usage_spec_parse(const kp_command *c, usage_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    const char *text = c->usage;
    char word[128], next[128];
    /* Skip "kopilka" and the command's own words. */
    int skip = 2 + (strchr(c->name, ' ') != NULL);
    for (int i = 0; i < skip && next_word(&text, word, sizeof word); i++) {
    }
    bool have = next_word(&text, word, sizeof word);
    int depth = 0; /* inside how many [ ] or ( ) */
    while (have) {
        bool closes = word[strlen(word) - 1] == ']' || word[strlen(word) - 1] == ')';
        int opens = marks_at_start(word), shut = marks_at_end(word);
        bool required = depth == 0 && opens == 0;
        const char *core = word_core(word);
        have = next_word(&text, next, sizeof next);
        if (core[0] == '\0' || strcmp(core, "|") == 0) {
        } else if (strncmp(core, "--", 2) == 0) {
            assert(spec->n_options < SPEC_OPTIONS_MAX && "usage line names too many options");
            bool value = !closes && have && next[0] != '[' && next[0] != '(' && next[0] != '|' &&
                         strncmp(next, "--", 2) != 0;
            snprintf(spec->options[spec->n_options].name, SPEC_NAME_MAX, "%s", core);
            spec->options[spec->n_options].takes_value = value;
            spec->options[spec->n_options].required = required;
            if (value) {
                /* the value's name, and the marks it closes ("NAME]") */
                shut += marks_at_end(next);
                snprintf(spec->options[spec->n_options].value, SPEC_NAME_MAX, "%s",
                         word_core(next));
                have = next_word(&text, next, sizeof next);
            }
            spec->n_options++;
        } else {
            size_t n = strlen(core);
            bool many = n > 3 && strcmp(core + n - 3, "...") == 0;
            if (required && !many && spec->positional_min < 4)
                snprintf(spec->positional_names[spec->positional_min++], SPEC_NAME_MAX, "%s",
                         core);
            spec->positional_max = many ? INT_MAX : spec->positional_max + 1;
        }
        depth += opens - shut;
        memcpy(word, next, sizeof word);
    }
}

/* Checks argv (the arguments after the command's name) against the command's
 * usage line; prints what is wrong and returns false on the first problem. */
static bool arguments_allowed(const kp_command *c, int argc, char **argv)
{
    usage_spec spec;
    usage_spec_parse(c, &spec);
    int positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (++positional > spec.positional_max) {
                fprintf(stderr, "kopilka %s: unexpected argument \"%s\": the command takes %d "
                                "argument(s) besides its options\nusage: %s\n",
                        c->name, a, spec.positional_max, c->usage);
                return false;
            }
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        size_t k = 0;
        while (k < spec.n_options &&
               (strlen(spec.options[k].name) != n || strncmp(spec.options[k].name, a, n) != 0))
            k++;
        if (k == spec.n_options) {
            fprintf(stderr, "kopilka %s: unknown option %.*s\nusage: %s\n", c->name, (int)n, a,
                    c->usage);
            return false;
        }
        if (spec.options[k].takes_value && eq == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "kopilka %s: option %s needs a value\nusage: %s\n", c->name, a,
                        c->usage);
                return false;
            }
            i++;
        } else if (!spec.options[k].takes_value && eq != NULL) {
            fprintf(stderr, "kopilka %s: option %.*s takes no value, got \"%s\"\nusage: %s\n",
                    c->name, (int)n, a, eq + 1, c->usage);
            return false;
        }
    }
    if (positional < spec.positional_min) {
        fprintf(stderr, "kopilka %s: %s is missing\nusage: %s\n", c->name,
                spec.positional_names[positional], c->usage);
        return false;
    }
    for (size_t k = 0; k < spec.n_options; k++) {
        if (!spec.options[k].required) continue;
        size_t n = strlen(spec.options[k].name);
        bool given = false;
        for (int i = 0; i < argc && !given; i++)
            given = strncmp(argv[i], spec.options[k].name, n) == 0 &&
                    (argv[i][n] == '\0' || argv[i][n] == '=');
        if (!given) {
            fprintf(stderr, "kopilka %s: %s %s is required\nusage: %s\n", c->name,
                    spec.options[k].name, spec.options[k].value, c->usage);
            return false;
        }
    }
    return true;
}

static void print_help(const kp_command *c)
{
    printf("Usage: %s\n\n%s\n", c->usage, c->help);
}

/* Prints the usage lines of the commands whose first word is `group`. */
static void group_usage(FILE *f, const char *group)
{
    size_t n = strlen(group);
    for (int i = 0; i < N_COMMANDS; i++)
        if (strncmp(commands[i].name, group, n) == 0 && commands[i].name[n] == ' ')
            fprintf(f, "  %s\n", commands[i].usage);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        if (argc > 2) {
            fprintf(stderr, "kopilka --version: unexpected argument \"%s\"\n", argv[2]);
            return 2;
        }
        printf("kopilka %s\n", KOPILKA_VERSION);
        return 0;
    }
    bool group = false; /* argv[1] is the first word of two-word commands */
    for (int i = 0; i < N_COMMANDS; i++) {
        const kp_command *c = &commands[i];
        const char *space = strchr(c->name, ' ');
        int words = 1;
        if (space) {
            size_t n = (size_t)(space - c->name);
            if (strlen(argv[1]) != n || strncmp(argv[1], c->name, n) != 0) continue;
            group = true;
            if (argc < 3 || strcmp(argv[2], space + 1) != 0) continue;
            words = 2;
        } else if (strcmp(argv[1], c->name) != 0) {
            continue;
        }
        if (wants_help(argc - 1 - words, argv + 1 + words)) {
            print_help(c);
            return 0;
        }
        if (!arguments_allowed(c, argc - 1 - words, argv + 1 + words)) return 2;
        return c->run(argc - 1 - words, argv + 1 + words);
    }
    if (group) {
        bool help = wants_help(argc - 2, argv + 2);
        FILE *f = help ? stdout : stderr;
        if (argc >= 3 && !help)
            fprintf(f, "kopilka %s: unknown subcommand \"%s\"; it is one of:\n", argv[1],
                    argv[2]);
        else
            fprintf(f, "Usage:\n");
        group_usage(f, argv[1]);
        fprintf(f, "\n`kopilka %s SUBCOMMAND --help` tells more of each.\n", argv[1]);
        return help ? 0 : 2;
    }
    fprintf(stderr, "kopilka: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
