// terminals.strings.js: the words of the back office's tills section (the
// terminal keys: list, add, revoke, rotate), Russian and English.
export const strings = {
  ru: {
    title: 'Кассы', about: 'У каждой кассы (или сервера веб-формы) свой ключ. Ключ показывается один раз — сразу сохраните его на кассе.',
    list: 'Кассы и их ключи', id: '№', store: 'Магазин', created: 'Создан', rotated: 'Ключ сменён',
    lastUsed: 'Последнее использование', revokedAt: 'Отозван', add: 'Добавить кассу',
    storeHint: 'Название магазина кассы, от 1 до 255 байт.', keyLabel: 'Ключ кассы',
    keyOnce: 'Ключ кассы № {id} ({store}). Он показан один раз: скопируйте его и введите на кассе.',
    revoke: 'Отозвать', rotate: 'Сменить ключ', revokeOf: 'Отозвать ключ кассы № {id}', rotateOf: 'Сменить ключ кассы № {id}',
    revoked: 'Ключ кассы № {id} отозван: касса больше не принимается.',
    confirmRevoke: 'Точно отозвать ключ кассы № {id}? Вернуть его нельзя.', yesRevoke: 'Да, отозвать',
  },
  en: {
    title: 'Tills', about: 'Each till (or web form backend) has its own key. A key is shown once: keep it on the till at once.',
    list: 'Tills and their keys', id: '#', store: 'Store', created: 'Created', rotated: 'Key changed',
    lastUsed: 'Last used', revokedAt: 'Revoked', add: 'Add a till',
    storeHint: 'The till’s store name, 1 to 255 bytes.', keyLabel: 'Till key',
    keyOnce: 'The key of till #{id} ({store}). It is shown this once: copy it and enter it on the till.',
    revoke: 'Revoke', rotate: 'New key', revokeOf: 'Revoke the key of till #{id}', rotateOf: 'Give till #{id} a new key',
    revoked: 'The key of till #{id} is revoked: the till is refused from now on.',
    confirmRevoke: 'Revoke the key of till #{id}? It cannot be undone.', yesRevoke: 'Yes, revoke',
  },
};
