/*
 * main.c: `kopilka`, the one binary: server and command-line tool. Finds the
 * command, prints help, and hands over to the command's function.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const kp_command commands[] = {
    {"init", "kopilka init DB --program FILE",
     "Creates a new database at DB (SQLite) and loads the program FILE as version 1.", cmd_init},
    {"program load", "kopilka program load DB FILE",
     "Validates the program FILE and loads it as a new version; the server uses it from its "
     "next operation. Prints the version.",
     cmd_program_load},
    {"terminal add", "kopilka terminal add DB --store NAME",
     "Creates a terminal (a till) of store NAME and prints its API key, once. Only a hash of "
     "the key is stored. The till sends it as `Authorization: Bearer KEY`.",
     cmd_terminal_add},
    {"cards issue", "kopilka cards issue DB --count N [--batch NAME]",
     "Issues N new cards, each with its own account, and prints one number a line (13 digits, "
     "the last a Luhn check digit). Issued cards earn and burn at the till at once. --batch "
     "records them as a named batch for the printer (`kopilka cards export`). Writes in "
     "chunks of about 5 ms, so a running server's tills are not held; progress on stderr.",
     cmd_cards_issue},
    {"cards export", "kopilka cards export DB --batch NAME --out DIR",
     "Writes, per card of the batch, a Code 128 barcode and a QR code as PNG and SVG "
     "(DIR/NUMBER-barcode.png, ...), and DIR/cards.csv naming them "
     "(number,batch,state,barcode_png,barcode_svg,qr_png,qr_svg); progress on stderr.",
     cmd_cards_export},
    {"staff add", "kopilka staff add DB --login L --role R [--password-file F]",
     "Adds a staff member with role R (cashier, manager, call_centre, marketer, admin, auditor, "
     "partner). The password (10 to 128 bytes) is read from the first line of F, or of stdin; "
     "only its Argon2id hash is stored. Staff log in at POST /v1/admin/login.",
     cmd_staff_add},
    {"import", "kopilka import DB [--cards F.csv] [--customers F.csv] [--balances F.csv]",
     "Imports cards, customers and opening balances from CSV (docs/import.md). Every row of "
     "every file is checked first and each bad one reported with its line; nothing is written "
     "unless all are good. Then rows are written in chunks of about 5 ms (a running server's "
     "tills are not held); progress on stderr. Rows already imported are skipped: running it "
     "again changes nothing, and completes an import that was cut short. Opening balances are "
     "ledger postings from program:opening.",
     cmd_import},
    {"export", "kopilka export DB (--customers FILE | --balances FILE)",
     "Writes customers (with their personal data, so the file is made readable by its owner "
     "only) or cards and balances as CSV.",
     cmd_export},
    {"serve", "kopilka serve DB [--listen HOST:PORT] [--readers N] [--http-threads N] "
              "[--now TIME] [--tick SECONDS]",
     "Serves the POS API (docs/api.md) on HOST:PORT (default 127.0.0.1:8080) until SIGINT or "
     "SIGTERM. Purchases and returns are answered only once durable: in groups, through "
     "the operation log DB.oplog-0/-1 (replayed after a crash by the next server or CLI "
     "command that opens DB; docs/architecture.md). "
     "--http-threads sets the event-loop threads that answer HTTP (1 to 64, default 4; "
     "routes other than purchases and returns run on four threads of their own, so a slow "
     "back-office request does not stall the tills); "
     "--readers the read connections for quotes and lookups (1 to 64, default 8). --now "
     "fixes the clock (RFC 3339) for tests. A scheduler runs due time-driven work (expiry, "
     "birthdays, tenure, tier reviews) at start and every --tick seconds (default 60; 0 = "
     "off).",
     cmd_serve},
    {"tick", "kopilka tick DB [--now TIME]",
     "Runs the time-driven work due at TIME (default: now) as the server's scheduler does: "
     "expiry of points, birthday and tenure grants, tier reviews; each due item exactly once, "
     "missed days and reviews caught up in order, each run recorded (`kopilka jobs`).",
     cmd_tick},
    {"event", "kopilka event DB --card N --type T --id ID [--store S] [--value V] [--token X] "
              "[--now TIME]",
     "Applies an external event to a card as POST /v1/events does (registration, survey, "
     "partner_card, a custom type with --value): the program's grant rules on type T decide "
     "the points. Idempotent by (store, id); store defaults to \"cli\". Prints the answer.",
     cmd_event},
    {"discount set", "kopilka discount set DB --card N --percent P",
     "Sets the individual discount of the card's account (seed 003: from 100 000 of "
     "accumulated spend, a rate set per customer).",
     cmd_discount_set},
    {"discount clear", "kopilka discount clear DB --card N",
     "Removes the individual discount of the card's account.", cmd_discount_clear},
    {"birthday set", "kopilka birthday set DB --card N --date YYYY-MM-DD",
     "Records the birthday of the card's customer for the program's birthday grants. Only "
     "a keyed hash of the month and day is stored (the key file DB.key is created if "
     "missing).",
     cmd_birthday_set},
    {"jobs", "kopilka jobs DB [--limit N]",
     "Lists the scheduler's recent job runs, newest first: id, job, due item, when it ran, "
     "accounts touched, what it did.",
     cmd_jobs},
    {"verify", "kopilka verify DB",
     "Checks every ledger invariant: each operation's postings sum to zero, every balance "
     "equals the replay of its postings and its lots less debt, no lot is outside 0..amount; "
     "and the audit log's hash chain: no entry changed, removed or out of order; with the "
     "key file DB.key at hand, the audit entries' MACs too (a chain rewritten without the "
     "key shows there). "
     "Prints each problem; exits 1 if there is any, 0 if none.",
     cmd_verify},
    {"demo", "kopilka demo [--db PATH] [--listen HOST:PORT]",
     "Creates (or reuses) a demo database (default kopilka-demo.db) with the example program "
     "of seed 004 case 1, a terminal and five cards, prints them with a sample curl command, "
     "and serves on localhost.",
     cmd_demo},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f)
{
    fprintf(f, "kopilka: a loyalty-program processing center\n\nUsage:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %s\n", commands[i].usage);
    fprintf(f, "\n`kopilka COMMAND --help` tells more of each.\n");
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        const kp_command *c = &commands[i];
        const char *space = strchr(c->name, ' ');
        int words = 1;
        if (space) {
            size_t n = (size_t)(space - c->name);
            if (strlen(argv[1]) != n || strncmp(argv[1], c->name, n) != 0) continue;
            if (argc < 3 || strcmp(argv[2], space + 1) != 0) {
                if (argc >= 3 && !wants_help(argc - 2, argv + 2)) continue;
                printf("Usage: %s\n\n%s\n", c->usage, c->help);
                return argc >= 3 ? 0 : 2;
            }
            words = 2;
        } else if (strcmp(argv[1], c->name) != 0) {
            continue;
        }
        if (wants_help(argc - 1 - words, argv + 1 + words)) {
            printf("Usage: %s\n\n%s\n", c->usage, c->help);
            return 0;
        }
        return c->run(argc - 1 - words, argv + 1 + words);
    }
    fprintf(stderr, "kopilka: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
