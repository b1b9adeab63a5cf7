// audit.strings.js: the audit log section's words in Russian and English.
export const strings = {
  ru: {
    title: 'Журнал аудита', filters: 'Отбор', actor: 'Кто', actorHint: 'staff:ЛОГИН, terminal:МАГАЗИН или cli:ПОЛЬЗОВАТЕЛЬ',
    action: 'Действие', actionHint: 'Начало названия: «card.» найдёт card.block, card.issue…',
    target: 'Над чем', targetHint: 'Например program:2 или staff:anna', from: 'С', to: 'До',
    find: 'Найти', clear: 'Сбросить', loading: 'Загрузка…', none: 'Записей не найдено.',
    seq: '№', at: 'Когда', who: 'Кто', what: 'Действие', on: 'Над чем', detail: 'Подробности',
    caption: 'Записи журнала, новые сверху', chain: 'Цепочка хешей', prevHash: 'Предыдущий хеш', hash: 'Хеш',
    role: 'роль {role}', newer: 'Новее', older: 'Старше', page: 'Страница {n}',
  },
  en: {
    title: 'Audit log', filters: 'Filters', actor: 'Actor', actorHint: 'staff:LOGIN, terminal:STORE or cli:USER',
    action: 'Action', actionHint: 'The start of the name: “card.” finds card.block, card.issue…',
    target: 'Target', targetHint: 'For example program:2 or staff:anna', from: 'From', to: 'To',
    find: 'Find', clear: 'Clear', loading: 'Loading…', none: 'No entries found.',
    seq: 'No.', at: 'When', who: 'Actor', what: 'Action', on: 'Target', detail: 'Detail',
    caption: 'Entries, newest first', chain: 'Hash chain', prevHash: 'Previous hash', hash: 'Hash',
    role: 'role {role}', newer: 'Newer', older: 'Older', page: 'Page {n}',
  },
};
