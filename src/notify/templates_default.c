/*
 * templates_default.c: Kopilka's own templates for every kind, in Russian
 * and English: an SMS (one or two parts: short), and an e-mail (subject,
 * plain text, and plain accessible HTML with inline styles and no images).
 * A template stored in the database (the back office) overrides one here.
 * The e-mail texts are composed once from each kind's lines below, with
 * the greeting and the signature around them.
 */
#include "notify/notify.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct lang_lines {
    const char *subject;
    const char *body; /* one paragraph of the e-mail; "\n" becomes a line break in HTML */
    const char *sms;
} lang_lines;

typedef struct kind_lines {
    lang_lines ru, en;
} kind_lines;

#define EXP_RU "{{#expiry_points}} {{expiry_date}} сгорит {{expiry_points}}.{{/expiry_points}}"
#define EXP_EN "{{#expiry_points}} {{expiry_points}} of them expire on {{expiry_date}}.{{/expiry_points}}"
#define AT_RU "{{#store}} ({{store}}{{#amount}}, {{amount}}{{/amount}}){{/store}}"
#define AT_EN "{{#store}} ({{store}}{{#amount}}, {{amount}}{{/amount}}){{/store}}"
#define CARD_RU "карта …{{card_last4}}"
#define CARD_EN "card …{{card_last4}}"

static const kind_lines lines[KP_NOTIFY__COUNT] = {
    [KP_NOTIFY_EARNED] = {
        .ru = {"Начислено баллов: {{earned}}",
               "Начислено баллов: {{earned}}" AT_RU ", " CARD_RU ". Баланс: {{balance}}." EXP_RU,
               "Баллы: +{{earned}}, баланс {{balance}}." EXP_RU},
        .en = {"You earned {{earned}} points",
               "You earned {{earned}} points" AT_EN " on " CARD_EN ". Balance: {{balance}}." EXP_EN,
               "+{{earned}} points, balance {{balance}}." EXP_EN}},
    [KP_NOTIFY_BURNT] = {
        .ru = {"Списано баллов: {{burnt}}",
               "Списано баллов: {{burnt}}{{#earned}}, начислено: {{earned}}{{/earned}}" AT_RU ", "
               CARD_RU ". Баланс: {{balance}}." EXP_RU
               "\nЕсли это были не вы, позвоните нам: карту можно заблокировать.",
               "Баллы: -{{burnt}}{{#earned}}, +{{earned}}{{/earned}}, баланс {{balance}}."},
        .en = {"{{burnt}} points spent",
               "You spent {{burnt}} points{{#earned}} and earned {{earned}}{{/earned}}" AT_EN
               " on " CARD_EN ". Balance: {{balance}}." EXP_EN
               "\nIf this was not you, call us: the card can be blocked.",
               "-{{burnt}} points{{#earned}}, +{{earned}}{{/earned}}, balance {{balance}}."}},
    [KP_NOTIFY_RETURNED] = {
        .ru = {"Возврат покупки",
               "Покупка возвращена" AT_RU ".{{#earned}} Вернули списанные баллы: {{earned}}."
               "{{/earned}}{{#burnt}} Отменили начисленные баллы: {{burnt}}.{{/burnt}} Баланс: "
               "{{balance}}.",
               "Возврат{{#earned}}: +{{earned}}{{/earned}}{{#burnt}}: -{{burnt}}{{/burnt}}, "
               "баланс {{balance}}."},
        .en = {"Your return",
               "A purchase was returned" AT_EN ".{{#earned}} Points given back: {{earned}}."
               "{{/earned}}{{#burnt}} Points taken back: {{burnt}}.{{/burnt}} Balance: "
               "{{balance}}.",
               "Return{{#earned}}: +{{earned}}{{/earned}}{{#burnt}}: -{{burnt}}{{/burnt}} points, "
               "balance {{balance}}."}},
    [KP_NOTIFY_EXPIRING] = {
        .ru = {"Баллы скоро сгорят: {{expiry_points}}",
               "{{expiry_date}} сгорит баллов: {{expiry_points}}. Потратьте их до этого дня. "
               "Баланс: {{balance}}.",
               "{{expiry_date}} сгорит баллов: {{expiry_points}}. Баланс {{balance}}."},
        .en = {"{{expiry_points}} points expire on {{expiry_date}}",
               "{{expiry_points}} of your points expire on {{expiry_date}}. Spend them before "
               "then. Balance: {{balance}}.",
               "{{expiry_points}} points expire on {{expiry_date}}. Balance {{balance}}."}},
    [KP_NOTIFY_EXPIRED] = {
        .ru = {"Баллы сгорели: {{points}}",
               "Сгорело баллов: {{points}}. Баланс: {{balance}}." EXP_RU,
               "Сгорело баллов: {{points}}, баланс {{balance}}."},
        .en = {"{{points}} points expired",
               "{{points}} points expired. Balance: {{balance}}." EXP_EN,
               "{{points}} points expired, balance {{balance}}."}},
    [KP_NOTIFY_BIRTHDAY] = {
        .ru = {"С днём рождения!",
               "С днём рождения! Дарим баллы: {{earned}}. Баланс: {{balance}}." EXP_RU,
               "С днём рождения! Дарим баллы: +{{earned}}, баланс {{balance}}."},
        .en = {"Happy birthday!",
               "Happy birthday! Here are {{earned}} points from us. Balance: {{balance}}." EXP_EN,
               "Happy birthday! +{{earned}} points from us, balance {{balance}}."}},
    [KP_NOTIFY_GRANTED] = {
        .ru = {"Начислено баллов: {{earned}}",
               "Начислено баллов: {{earned}}{{#reason}} ({{reason}}){{/reason}}. Баланс: "
               "{{balance}}." EXP_RU,
               "Баллы: +{{earned}}, баланс {{balance}}." EXP_RU},
        .en = {"You got {{earned}} points",
               "You got {{earned}} points{{#reason}} ({{reason}}){{/reason}}. Balance: "
               "{{balance}}." EXP_EN,
               "+{{earned}} points, balance {{balance}}." EXP_EN}},
    [KP_NOTIFY_ADJUSTED] = {
        .ru = {"Баланс изменён",
               "Баланс изменён на {{change}}{{#reason}} ({{reason}}){{/reason}}. Баланс: "
               "{{balance}}.",
               "Баллы: {{change}}, баланс {{balance}}."},
        .en = {"Your balance changed",
               "Your balance changed by {{change}} points{{#reason}} ({{reason}}){{/reason}}. "
               "Balance: {{balance}}.",
               "{{change}} points, balance {{balance}}."}},
    [KP_NOTIFY_WELCOME] = {
        .ru = {"Добро пожаловать в {{program}}",
               "Ваша " CARD_RU " зарегистрирована. Копите баллы с каждой покупкой и платите "
               "ими.{{#balance}} Баланс: {{balance}}.{{/balance}}",
               "{{program}}: " CARD_RU " зарегистрирована. Добро пожаловать!"},
        .en = {"Welcome to {{program}}",
               "Your " CARD_EN " is registered. Earn points with every purchase and pay with "
               "them.{{#balance}} Balance: {{balance}}.{{/balance}}",
               "{{program}}: " CARD_EN " is registered. Welcome!"}},
    [KP_NOTIFY_TIER] = {
        .ru = {"Ваш уровень: {{tier}}",
               "Ваш уровень теперь «{{tier}}»{{#tier_before}} (был «{{tier_before}}»)"
               "{{/tier_before}}.",
               "Ваш уровень теперь: {{tier}}."},
        .en = {"Your tier is now {{tier}}",
               "Your tier is now {{tier}}{{#tier_before}} (it was {{tier_before}})"
               "{{/tier_before}}.",
               "Your tier is now {{tier}}."}},
    [KP_NOTIFY_TRANSFER_IN] = {
        .ru = {"Вам перевели баллы: {{points}}",
               "Вам перевели баллов: {{points}}{{#other_card}} с карты {{other_card}}"
               "{{/other_card}}. Баланс: {{balance}}.",
               "Вам перевели баллы: +{{points}}, баланс {{balance}}."},
        .en = {"{{points}} points transferred to you",
               "{{points}} points were transferred to you{{#other_card}} from card "
               "{{other_card}}{{/other_card}}. Balance: {{balance}}.",
               "+{{points}} points transferred to you, balance {{balance}}."}},
    [KP_NOTIFY_TRANSFER_OUT] = {
        .ru = {"Вы перевели баллы: {{points}}",
               "Вы перевели баллов: {{points}}{{#other_card}} на карту {{other_card}}"
               "{{/other_card}}. Баланс: {{balance}}.",
               "Перевод баллов: -{{points}}, баланс {{balance}}."},
        .en = {"You transferred {{points}} points",
               "You transferred {{points}} points{{#other_card}} to card {{other_card}}"
               "{{/other_card}}. Balance: {{balance}}.",
               "-{{points}} points transferred, balance {{balance}}."}},
    [KP_NOTIFY_CARD_BLOCKED] = {
        .ru = {"Карта …{{card_last4}} заблокирована",
               "Ваша " CARD_RU " заблокирована{{#reason}} ({{reason}}){{/reason}}. Баллы "
               "сохранены. Если вы этого не делали, позвоните нам.",
               "Карта …{{card_last4}} заблокирована. Баллы сохранены."},
        .en = {"Card …{{card_last4}} is blocked",
               "Your " CARD_EN " is blocked{{#reason}} ({{reason}}){{/reason}}. Your points are "
               "safe. If you did not ask for this, call us.",
               "Card …{{card_last4}} is blocked. Your points are safe."}},
    [KP_NOTIFY_CARD_REPLACED] = {
        .ru = {"Карта заменена",
               "Ваша " CARD_RU " заменена{{#other_card}} на карту {{other_card}}{{/other_card}}. "
               "Баллы перенесены. Баланс: {{balance}}.",
               "Карта …{{card_last4}} заменена{{#other_card}} на {{other_card}}{{/other_card}}. "
               "Баллы перенесены."},
        .en = {"Your card was replaced",
               "Your " CARD_EN " was replaced{{#other_card}} by card {{other_card}}"
               "{{/other_card}}. Your points moved with it. Balance: {{balance}}.",
               "Card …{{card_last4}} was replaced{{#other_card}} by {{other_card}}"
               "{{/other_card}}. Points moved."}},
    [KP_NOTIFY_LOGIN_CODE] = {
        .ru = {"Код для входа: {{code}}",
               "Ваш код для входа в личный кабинет: {{code}}. Никому его не сообщайте.",
               "Код для входа: {{code}}. Никому его не сообщайте."},
        .en = {"Your login code: {{code}}",
               "Your code to log in to your account: {{code}}. Do not share it with anyone.",
               "Login code: {{code}}. Do not share it."}},
    [KP_NOTIFY_CAMPAIGN] = {
        .ru = {"{{subject}}", "{{text}}", "{{text}}"},
        .en = {"{{subject}}", "{{text}}", "{{text}}"}},
    [KP_NOTIFY_FAMILY_INVITE] = {
        .ru = {"Приглашение в семейный счёт",
               "Вас пригласили в семейный счёт программы {{program}}: общие баллы на всю "
               "семью. Откройте личный кабинет, чтобы принять или отклонить приглашение; оно "
               "действует 7 дней.",
               "Вас пригласили в семейный счёт {{program}}. Ответьте в личном кабинете за 7 "
               "дней."},
        .en = {"An invitation to a family account",
               "You are invited to share a family account in {{program}}: one pot of points "
               "for the whole family. Open your account to accept or decline the invitation; "
               "it is valid for 7 days.",
               "You are invited to a family account in {{program}}. Answer in your account "
               "within 7 days."}},
    [KP_NOTIFY_ORDER_PLACED] = {
        .ru = {"Заказ №{{order}} оформлен",
               "Вы заказали «{{item}}»{{#qty}} ({{qty}} шт.){{/qty}} за {{points}} баллов, "
               CARD_RU ". Заберите его в магазине {{store}}: мы сообщим, когда он будет готов. "
               "Баланс: {{balance}}.",
               "Заказ №{{order}}: «{{item}}» за {{points}} баллов. Сообщим, когда он будет готов."},
        .en = {"Order {{order}} placed",
               "You ordered {{item}}{{#qty}} (x{{qty}}){{/qty}} for {{points}} points on "
               CARD_EN ". Collect it at store {{store}}: we will tell you when it is ready. "
               "Balance: {{balance}}.",
               "Order {{order}}: {{item}} for {{points}} points. We will tell you when it is "
               "ready."}},
    [KP_NOTIFY_ORDER_READY] = {
        .ru = {"Заказ №{{order}} готов",
               "Ваш заказ №{{order}} «{{item}}» готов: заберите его в магазине {{store}}, "
               "назовите номер заказа или покажите карту.",
               "Заказ №{{order}} «{{item}}» готов: заберите его в магазине {{store}}."},
        .en = {"Order {{order}} is ready",
               "Your order {{order}} ({{item}}) is ready: collect it at store {{store}}, "
               "giving the order's number or showing your card.",
               "Order {{order}} ({{item}}) is ready: collect it at store {{store}}."}},
    [KP_NOTIFY_ORDER_CANCELLED] = {
        .ru = {"Заказ №{{order}} отменён",
               "Заказ №{{order}} «{{item}}» отменён. {{points}} баллов вернулись на "
               CARD_RU ". Баланс: {{balance}}.",
               "Заказ №{{order}} отменён, баллы вернулись: +{{points}}, баланс {{balance}}."},
        .en = {"Order {{order}} cancelled",
               "Order {{order}} ({{item}}) was cancelled. {{points}} points went back to "
               CARD_EN ". Balance: {{balance}}.",
               "Order {{order}} cancelled, points back: +{{points}}, balance {{balance}}."}},
};

/* The greeting and signature of the e-mails; the unsubscribe line for the
 * kinds that have a link (marketing). */
static const struct {
    const char *hello, *sign, *unsubscribe, *lang;
} frame[2] = {
    {"{{#first_name}}{{first_name}}, здравствуйте!{{/first_name}}"
     "{{^first_name}}Здравствуйте!{{/first_name}}",
     "{{program}}", "Отписаться от рассылки", "ru"},
    {"{{#first_name}}Hello {{first_name}},{{/first_name}}{{^first_name}}Hello,{{/first_name}}",
     "{{program}}", "Unsubscribe", "en"},
};

enum { TEXT_MAX = 1024, HTML_MAX = 3072 };

static struct {
    kp_template_text email, sms;
    char text[TEXT_MAX], html[HTML_MAX];
} built[KP_NOTIFY__COUNT][2];
static pthread_once_t built_once = PTHREAD_ONCE_INIT;

static bool has_unsubscribe(kp_notify_kind kind)
{
    for (const char *const *f = kp_template_fields(kind); *f; f++)
        if (strcmp(*f, "unsubscribe_url") == 0) return true;
    return false;
}

/* Appends s to out[*used..size) with "\n" as "<br>"; the texts hold no
 * other HTML special character (the test checks every one renders). */
static void put_html(char *out, size_t size, size_t *used, const char *s)
{
    for (; *s && *used + 5 < size; s++) {
        if (*s == '\n')
            *used += (size_t)snprintf(out + *used, size - *used, "<br>");
        else
            out[(*used)++] = *s;
    }
    out[*used] = '\0';
}

static void build(void)
{
    static const char *const p_style =
        "margin:0 0 16px 0;font-family:Arial,Helvetica,sans-serif;font-size:16px;"
        "line-height:1.5;color:#1a1a1a";
    for (int k = 1; k < KP_NOTIFY__COUNT; k++) {
        for (int l = 0; l < 2; l++) {
            const lang_lines *ll = l == 0 ? &lines[k].ru : &lines[k].en;
            bool unsub = has_unsubscribe((kp_notify_kind)k);
            char unsub_text[160] = "", unsub_html[400] = "";
            if (unsub) {
                snprintf(unsub_text, sizeof unsub_text,
                         "{{#unsubscribe_url}}\n\n%s: {{unsubscribe_url}}{{/unsubscribe_url}}",
                         frame[l].unsubscribe);
                snprintf(unsub_html, sizeof unsub_html,
                         "{{#unsubscribe_url}}<p style=\"%s;font-size:13px;color:#555\">"
                         "<a href=\"{{unsubscribe_url}}\" style=\"color:#1a4fa0\">%s</a></p>"
                         "{{/unsubscribe_url}}",
                         p_style, frame[l].unsubscribe);
            }
            snprintf(built[k][l].text, TEXT_MAX, "%s\n\n%s\n\n%s%s", frame[l].hello, ll->body,
                     frame[l].sign, unsub_text);
            size_t used = (size_t)snprintf(
                built[k][l].html, HTML_MAX,
                "<!DOCTYPE html><html lang=\"%s\"><head><meta charset=\"utf-8\">"
                "<title>%s</title></head><body style=\"margin:0;padding:24px;"
                "background:#ffffff\"><div style=\"max-width:560px\" role=\"article\">"
                "<p style=\"%s\">%s</p><p style=\"%s\">",
                frame[l].lang, ll->subject, p_style, frame[l].hello, p_style);
            put_html(built[k][l].html, HTML_MAX, &used, ll->body);
            used += (size_t)snprintf(built[k][l].html + used, HTML_MAX - used,
                                     "</p><p style=\"%s;color:#555\">%s</p>%s</div></body></html>",
                                     p_style, frame[l].sign, unsub_html);
            built[k][l].email = (kp_template_text){ll->subject, built[k][l].text, built[k][l].html};
            built[k][l].sms = (kp_template_text){"", ll->sms, ""};
        }
    }
}

const kp_template_text *kp_template_builtin(kp_notify_kind kind, kp_channel channel,
                                            const char *language)
{
    if (kind <= 0 || kind >= KP_NOTIFY__COUNT || language == NULL) return NULL;
    int l = strcmp(language, "ru") == 0 ? 0 : strcmp(language, "en") == 0 ? 1 : -1;
    if (l < 0) return NULL;
    pthread_once(&built_once, build);
    if (channel == KP_CHANNEL_EMAIL) return &built[kind][l].email;
    if (channel == KP_CHANNEL_SMS) return &built[kind][l].sms;
    return NULL;
}
