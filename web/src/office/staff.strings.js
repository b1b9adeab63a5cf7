// staff.strings.js: the words of the back office's staff section (the
// accounts, adding one, changing a role, disabling), Russian and English.
export const strings = {
  ru: {
    title: 'Сотрудники', list: 'Учётные записи', login: 'Логин', role: 'Роль', state: 'Состояние',
    created: 'Создан', you: '(вы)', add: 'Добавить сотрудника', password: 'Пароль',
    passwordHint: 'Не короче 10 символов.',
    added: 'Сотрудник {login} добавлен.', roleOf: 'Роль сотрудника {login}', applyRole: 'Сменить роль',
    roleChanged: 'Роль {login}: {role}. Его сессии закрыты.', disable: 'Отключить', enable: 'Включить',
    disabled: '{login} отключён: войти не сможет, его сессии закрыты.', enabled: '{login} снова может войти.',
    sessionsNote: 'Любое изменение закрывает сессии сотрудника.',
    newPassword: 'Новый пароль', newPasswordField: 'Новый пароль сотрудника', account: 'Сотрудник', pickOne: 'Выберите сотрудника', setPassword: 'Задать пароль',
    passwordSet: 'Пароль {login} изменён; его сессии закрыты.',
    partner: 'Партнёр', pickPartner: 'Выберите партнёра',
    partnerHint: 'Сотрудник партнёра видит только данные своего партнёра.',
    noPartners: 'В действующей программе нет партнёров.',
  },
  en: {
    title: 'Staff', list: 'Accounts', login: 'Login', role: 'Role', state: 'State',
    created: 'Created', you: '(you)', add: 'Add a member of staff', password: 'Password',
    passwordHint: 'At least 10 characters.',
    added: '{login} is added.', roleOf: 'Role of {login}', applyRole: 'Change the role',
    roleChanged: '{login} is now {role}; their sessions are ended.', disable: 'Disable', enable: 'Enable',
    disabled: '{login} is disabled: they cannot log in, their sessions are ended.', enabled: '{login} may log in again.',
    sessionsNote: 'Every change ends the member’s sessions.',
    newPassword: 'A new password', newPasswordField: 'New password', account: 'Member of staff', pickOne: 'Choose a member of staff', setPassword: 'Set the password',
    passwordSet: 'The password of {login} is changed; their sessions are ended.',
    partner: 'Partner', pickPartner: 'Choose a partner',
    partnerHint: 'A partner’s staff sees only their partner’s data.',
    noPartners: 'The running program has no partners.',
  },
};
