/*
 * template.c: message templates: {{field}} and {{#field}} sections, checked when loaded, rendered per language.
 */
