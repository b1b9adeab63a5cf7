// strings.js: the back office shell's words in Russian and English (same
// keys in both: web/build.mjs checks). Each page keeps its own words in
// <page>.strings.js.
export const strings = {
  ru: {
    title: 'Бэк-офис', login: 'Логин', password: 'Пароль', enter: 'Войти', out: 'Выйти',
    hello: 'Вы вошли как {login} ({role})', who: '{login} · {role}', nav: 'Разделы',
    dashboard: 'Сводка', customers: 'Клиенты', cards: 'Карты', families: 'Семьи',
    adjustments: 'Корректировки', staff: 'Сотрудники', terminals: 'Кассы', programs: 'Программа',
    imports: 'Импорт', reports: 'Отчёты', simulate: 'Модель программы', audit: 'Журнал аудита', messages: 'Уведомления',
    segments: 'Сегменты', campaigns: 'Кампании',
    catalog: 'Каталог подарков',
    nothing: 'Для вашей роли здесь нет разделов.', expired: 'Сессия закончилась: войдите снова.',
    loading: 'Загрузка…', forbidden: 'Вашей роли этот раздел недоступен.',
    draws: 'Розыгрыши',
    settlement: 'Взаиморасчёты',
  },
  en: {
    title: 'Back office', login: 'Login', password: 'Password', enter: 'Log in', out: 'Log out',
    hello: 'Logged in as {login} ({role})', who: '{login} · {role}', nav: 'Sections',
    dashboard: 'Dashboard', customers: 'Customers', cards: 'Cards', families: 'Families',
    adjustments: 'Adjustments', staff: 'Staff', terminals: 'Tills', programs: 'Program',
    imports: 'Import', reports: 'Reports', simulate: 'Program model', audit: 'Audit log', messages: 'Notifications',
    segments: 'Segments', campaigns: 'Campaigns',
    catalog: 'Rewards catalog',
    nothing: 'Your role has no sections here.', expired: 'The session ended: log in again.',
    loading: 'Loading…', forbidden: 'Your role may not open this section.',
    draws: 'Prize draws',
    settlement: 'Settlement',
  },
};
