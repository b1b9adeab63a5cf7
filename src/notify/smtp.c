/*
 * smtp.c: e-mail over SMTP with libcurl: MIME with UTF-8 subject, text and HTML parts.
 */
