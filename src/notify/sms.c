/*
 * sms.c: SMS through an HTTP gateway configured by URL, auth, body template and success rule.
 */
