/*
 * http_notify.c: the notification routes: messages, webhook endpoints, templates, preferences, unsubscribe, SMS replies, login codes.
 */
