/* test_notify_template.c: templates (compile errors with line:column,
 * sections, escaping), every built-in template, the seed's example in
 * Russian and English, and the formatting of numbers, dates and money. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <kopilka/clock.h>

#include "notify/notify.h"

static kp_err compile(kp_notify_kind kind, const char *text, kp_template **t, kp_error *e)
{
    memset(e, 0, sizeof *e);
    return kp_template_compile(kind, text, "text", t, e);
}

static void test_unknown_field_is_refused_with_its_place(void **state)
{
    (void)state;
    kp_template *t = NULL;
    kp_error e;
    assert_int_equal(compile(KP_NOTIFY_EARNED, "Hello\n  ёж {{balanse}}", &t, &e), KP_ERR_INVALID);
    assert_null(t);
    assert_string_equal(e.field, "text");
    assert_non_null(strstr(e.message, "line 2:6"));
    assert_non_null(strstr(e.message, "\"balanse\""));
    assert_non_null(strstr(e.message, "balance"));  /* the allowed fields are listed */
    /* A field of another kind is unknown here: a login code has no balance. */
    assert_int_equal(compile(KP_NOTIFY_LOGIN_CODE, "{{balance}}", &t, &e), KP_ERR_INVALID);
    assert_non_null(strstr(e.message, "line 1:1"));
    assert_int_equal(compile(KP_NOTIFY_LOGIN_CODE, "{{code}}", &t, &e), KP_OK);
    kp_template_free(t);
    /* The field given names the part. */
    memset(&e, 0, sizeof e);
    assert_int_equal(kp_template_compile(KP_NOTIFY_EARNED, "{{x}}", "subject", &t, &e),
                     KP_ERR_INVALID);
    assert_string_equal(e.field, "subject");
}

static void test_unbalanced_sections_are_refused(void **state)
{
    (void)state;
    kp_template *t = NULL;
    kp_error e;
    assert_int_equal(compile(KP_NOTIFY_EARNED, "a {{#store}} b", &t, &e), KP_ERR_INVALID);
    assert_non_null(strstr(e.message, "never closed"));
    assert_non_null(strstr(e.message, "line 1:3"));
    assert_int_equal(compile(KP_NOTIFY_EARNED, "x\n{{/store}}", &t, &e), KP_ERR_INVALID);
    assert_non_null(strstr(e.message, "line 2:1"));
    assert_int_equal(compile(KP_NOTIFY_EARNED, "{{#store}}{{#amount}}{{/store}}{{/amount}}", &t, &e),
                     KP_ERR_INVALID);
    assert_non_null(strstr(e.message, "out of order"));
    assert_int_equal(compile(KP_NOTIFY_EARNED, "{{store", &t, &e), KP_ERR_INVALID);
    assert_non_null(strstr(e.message, "unclosed"));
}

static void test_sections_show_when_set(void **state)
{
    (void)state;
    kp_template *t = NULL;
    kp_error e;
    assert_int_equal(compile(KP_NOTIFY_BURNT,
                             "{{#earned}}+{{earned}}{{/earned}}{{^earned}}none{{/earned}}|"
                             "{{#store}}at {{store}}{{/store}}",
                             &t, &e),
                     KP_OK);
    kp_vars v = {0};
    kp_buf out;
    kp_buf_init(&out, 1024);
    assert_int_equal(kp_template_render(t, &v, false, &out), KP_OK);
    assert_string_equal(out.data, "none|");
    assert_true(kp_vars_set(&v, "earned", "0")); /* "0" is not set */
    assert_int_equal(kp_template_render(t, &v, false, &out), KP_OK);
    assert_string_equal(out.data, "none|");
    kp_vars_set(&v, "earned", "12");
    kp_vars_set(&v, "store", "Main");
    assert_int_equal(kp_template_render(t, &v, false, &out), KP_OK);
    assert_string_equal(out.data, "+12|at Main");
    assert_false(kp_vars_set(&v, "nonsense", "x"));
    kp_template_free(t);
    kp_buf_release(&out);
}

static void test_html_escapes_values_not_the_template(void **state)
{
    (void)state;
    kp_template *t = NULL;
    kp_error e;
    assert_int_equal(compile(KP_NOTIFY_CARD_BLOCKED, "<b>{{reason}}</b>", &t, &e), KP_OK);
    kp_vars v = {0};
    kp_vars_set(&v, "reason", "<script>\"lost\" & 'stolen'</script>");
    kp_buf out;
    kp_buf_init(&out, 1024);
    assert_int_equal(kp_template_render(t, &v, true, &out), KP_OK);
    assert_string_equal(out.data,
                        "<b>&lt;script&gt;&quot;lost&quot; &amp; &#39;stolen&#39;&lt;/script&gt;</b>");
    assert_int_equal(kp_template_render(t, &v, false, &out), KP_OK);
    assert_string_equal(out.data, "<b><script>\"lost\" & 'stolen'</script></b>");
    /* A full buffer is an error, not a cut text. */
    kp_buf small;
    kp_buf_init(&small, 8);
    assert_int_equal(kp_template_render(t, &v, true, &small), KP_ERR_LIMIT);
    kp_buf_release(&small);
    kp_template_free(t);
    kp_buf_release(&out);
}

/* Every built-in template compiles for its kind, renders with every field
 * set, and the SMS stay short. */
static size_t chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void test_every_builtin_compiles_for_its_kind(void **state)
{
    (void)state;
    static const char *const langs[] = {"ru", "en"};
    kp_buf out;
    kp_buf_init(&out, 64 * 1024);
    for (int k = 1; k < KP_NOTIFY__COUNT; k++) {
        kp_vars v = {0};
        for (const char *const *f = kp_template_fields((kp_notify_kind)k); *f; f++)
            kp_vars_set(&v, *f, strcmp(*f, "code") == 0 ? "123456" : "1\xC2\xA0" "560");
        for (size_t l = 0; l < 2; l++) {
            for (kp_channel ch = KP_CHANNEL_EMAIL; ch <= KP_CHANNEL_SMS; ch++) {
                const kp_template_text *tt = kp_template_builtin((kp_notify_kind)k, ch, langs[l]);
                assert_non_null(tt);
                const char *parts[3] = {tt->subject, tt->text, tt->html};
                const char *names[3] = {"subject", "text", "html"};
                for (int i = 0; i < 3; i++) {
                    if (ch == KP_CHANNEL_SMS && i != 1) {
                        assert_string_equal(parts[i], "");
                        continue;
                    }
                    kp_template *t = NULL;
                    kp_error e = {0};
                    if (kp_template_compile((kp_notify_kind)k, parts[i], names[i], &t, &e) != KP_OK)
                        fail_msg("%s %s %s %s: %s", kp_notify_kind_name((kp_notify_kind)k),
                                 kp_channel_name(ch), langs[l], names[i], e.message);
                    assert_int_equal(kp_template_render(t, &v, i == 2, &out), KP_OK);
                    assert_true(out.len > 0);
                    if (i == 2) {
                        assert_non_null(strstr(out.data, "</html>"));
                        assert_null(strstr(out.data, "<img"));
                    }
                    if (ch == KP_CHANNEL_SMS && k != KP_NOTIFY_CAMPAIGN) {
                        /* One or two parts: 2 x 67 UCS-2, 2 x 153 GSM. */
                        size_t max = l == 0 ? 134 : 306;
                        if (chars(out.data) > max)
                            fail_msg("%s sms %s is %zu chars: %s",
                                     kp_notify_kind_name((kp_notify_kind)k), langs[l],
                                     chars(out.data), out.data);
                    }
                    kp_template_free(t);
                }
            }
        }
        assert_null(kp_template_builtin((kp_notify_kind)k, KP_CHANNEL_SMS, "de"));
        assert_null(kp_template_builtin((kp_notify_kind)k, KP_CHANNEL_WEBHOOK, "ru"));
    }
    kp_buf_release(&out);
}

/* The seed's example: "+ 1 560 points, balance 4 426, 2 000 of them expire
 * on 1 March". */
static void render_seed(const char *lang, kp_buf *out)
{
    kp_notify_event ev = {.id = 1, .kind = KP_NOTIFY_EARNED, .account_id = 7};
    snprintf(ev.card, sizeof ev.card, "2000000000017");
    kp_time exp;
    assert_true(kp_time_parse("2027-02-28T22:00:00Z", &exp)); /* 1 March in Moscow */
    char payload[256];
    char at[32];
    kp_time_format(exp, at, sizeof at);
    snprintf(payload, sizeof payload,
             "{\"earned\":1560,\"points\":1560,\"balance\":4426,\"expiry_points\":2000,"
             "\"expiry_at\":\"%s\",\"amount_minor\":156000,\"currency\":\"RUB\","
             "\"store\":\"Main\",\"balances\":{\"regular\":1200,\"premium\":3226}}",
             at);
    json_t *p = json_loads(payload, 0, NULL);
    kp_vars v;
    kp_error e = {0};
    assert_int_equal(kp_vars_from_event_in(&ev, p, lang, 180, "RUB", "Anna", "Kopilka", &v, &e),
                     KP_OK);
    json_decref(p);
    const kp_template_text *tt = kp_template_builtin(KP_NOTIFY_EARNED, KP_CHANNEL_SMS, lang);
    kp_template *t = NULL;
    assert_int_equal(kp_template_compile(KP_NOTIFY_EARNED, tt->text, "text", &t, &e), KP_OK);
    assert_int_equal(kp_template_render(t, &v, false, out), KP_OK);
    kp_template_free(t);
    if (strcmp(lang, "ru") == 0) {
        assert_string_equal(kp_vars_get(&v, "amount"), "1\xC2\xA0" "560,00\xC2\xA0₽");
        assert_string_equal(kp_vars_get(&v, "balances"),
                            "regular 1\xC2\xA0" "200, premium 3\xC2\xA0" "226");
    } else {
        assert_string_equal(kp_vars_get(&v, "amount"), "RUB 1,560.00");
    }
    assert_string_equal(kp_vars_get(&v, "card_last4"), "0017");
}

static void test_seed_example_in_russian_and_english(void **state)
{
    (void)state;
    kp_buf out;
    kp_buf_init(&out, 4096);
    render_seed("ru", &out);
    assert_string_equal(out.data, "Баллы: +1\xC2\xA0" "560, баланс 4\xC2\xA0" "426. "
                                  "1 марта 2027 сгорит 2\xC2\xA0" "000.");
    render_seed("en", &out);
    assert_string_equal(out.data,
                        "+1,560 points, balance 4,426. 2,000 of them expire on 1 March 2027.");
    kp_buf_release(&out);
}

static void test_numbers_dates_money(void **state)
{
    (void)state;
    char s[64];
    kp_notify_format_number(0, "ru", s, sizeof s);
    assert_string_equal(s, "0");
    kp_notify_format_number(999, "en", s, sizeof s);
    assert_string_equal(s, "999");
    kp_notify_format_number(1560, "ru", s, sizeof s);
    assert_string_equal(s, "1\xC2\xA0" "560");
    kp_notify_format_number(-1234567, "en", s, sizeof s);
    assert_string_equal(s, "-1,234,567");
    kp_notify_format_number(INT64_MIN, "en", s, sizeof s);
    assert_string_equal(s, "-9,223,372,036,854,775,808");
    kp_time t;
    assert_true(kp_time_parse("2027-03-01T00:30:00Z", &t));
    kp_notify_format_date(t, 0, "ru", s, sizeof s);
    assert_string_equal(s, "1 марта 2027");
    kp_notify_format_date(t, -60, "en", s, sizeof s); /* still 28 February an hour west */
    assert_string_equal(s, "28 February 2027");
    assert_true(kp_time_parse("2026-12-31T21:00:00Z", &t));
    kp_notify_format_date(t, 180, "ru", s, sizeof s); /* Moscow: the new year */
    assert_string_equal(s, "1 января 2027");
    kp_notify_format_money(123450, "RUB", "ru", s, sizeof s);
    assert_string_equal(s, "1\xC2\xA0" "234,50\xC2\xA0₽");
    kp_notify_format_money(123450, "RUB", "en", s, sizeof s);
    assert_string_equal(s, "RUB 1,234.50");
    kp_notify_format_money(-5, "USD", "en", s, sizeof s);
    assert_string_equal(s, "USD -0.05");
    kp_notify_format_money(99, "EUR", "ru", s, sizeof s);
    assert_string_equal(s, "0,99\xC2\xA0" "EUR");
}

static void test_payload_round_trip_omits_unset(void **state)
{
    (void)state;
    kp_notify_figures f = {0};
    f.earned = 10;
    f.has_balance = true; /* a zero balance is a figure */
    snprintf(f.store, sizeof f.store, "Main \"1\"");
    kp_buf b;
    kp_buf_init(&b, 4096);
    assert_int_equal(kp_notify_payload(&f, &b), KP_OK);
    assert_string_equal(b.data, "{\"earned\":10,\"balance\":0,\"store\":\"Main \\\"1\\\"\"}");
    kp_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_field_is_refused_with_its_place),
        cmocka_unit_test(test_unbalanced_sections_are_refused),
        cmocka_unit_test(test_sections_show_when_set),
        cmocka_unit_test(test_html_escapes_values_not_the_template),
        cmocka_unit_test(test_every_builtin_compiles_for_its_kind),
        cmocka_unit_test(test_seed_example_in_russian_and_english),
        cmocka_unit_test(test_numbers_dates_money),
        cmocka_unit_test(test_payload_round_trip_omits_unset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
