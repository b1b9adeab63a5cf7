-- The members report's history of bench/members_report.py in SQL, for PostgreSQL:
-- 10 000 000 receipts. Run on a database `kopilka init` made, then
-- bench/members_report.py KOPILKA 0 postgresql://...
\timing on
SELECT setseed(0.1);
INSERT INTO accounts(id, created_at) SELECT i, 1704067200 FROM generate_series(1, 1000000) i;
INSERT INTO cards(number, account_id, state, created_at) SELECT 'M' || lpad(i::text, 8, '0'), i, 1, 1704067200 FROM generate_series(1, 1000000) i;
INSERT INTO account_rules(account_id, tier) SELECT i, 'gold' FROM generate_series(1, 1000000, 10) i;
INSERT INTO ops(type, account_id, card, store, receipt, program_version, at, amount, paid, earned, burned, points)
  SELECT 1, a, 'M' || lpad(a::text, 8, '0'), 'store-' || (1 + (random()*2)::int), 'O' || i, 1, 1704067200 + (random() * 63071999)::bigint, 500 + (random()*1999500)::bigint, 0, 0, 0, 0
  FROM (SELECT i, 1 + (random() * 999999)::int AS a FROM generate_series(1, 3000000) i) x;
INSERT INTO sales(at, store, receipt, card, kind, source, amount, customer)
  SELECT 1704067200 + (random() * 63071999)::bigint, 'store-' || (1 + (random()*2)::int), 'S' || i,
    CASE WHEN i <= 1000000 THEN 'M' || lpad((1 + (random() * 999999)::int)::text, 8, '0') ELSE '' END,
    1, 2, 500 + (random() * 999500)::bigint,
    CASE WHEN i > 1000000 AND i <= 6000000 THEN 'N' || lpad((1 + (random() * 1666665)::int)::text, 8, '0') ELSE '' END
  FROM generate_series(1, 7000000) i;
ANALYZE;
