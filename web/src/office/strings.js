// strings.js: the back office's words in Russian and English (same keys in
// both: web/build.mjs checks).
export const strings = {
  ru: { title: 'Бэк-офис', login: 'Логин', password: 'Пароль', enter: 'Войти', out: 'Выйти', hello: 'Вы вошли как {login} ({role})' },
  en: { title: 'Back office', login: 'Login', password: 'Password', enter: 'Log in', out: 'Log out', hello: 'Logged in as {login} ({role})' },
};
