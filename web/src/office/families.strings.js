// families.strings.js: the words of the back office's families section
// (create for an owner, members and who may spend, the pot's history),
// Russian and English.
export const strings = {
  ru: {
    title: 'Семьи', create: 'Создать семью', owner: 'Владелец', who: 'Клиент: номер клиента или номер карты',
    whoHint: 'Число до 10 цифр — номер клиента; длиннее — номер его карты.',
    openTitle: 'Открыть семью', familyId: 'Номер семьи', about:
      'Семья — общий счёт владельца: покупки участников копятся в нём, а тратить могут те, кому владелец разрешил.',
    pot: 'Общий счёт', members: 'Участники', role: 'Роль', ownerRole: 'владелец', memberRole: 'участник',
    maySpend: 'Может тратить', joined: 'С нами с', allow: 'Разрешить тратить', forbid: 'Запретить тратить',
    leave: 'Исключить', leaveOwner: 'Закрыть семью (владелец уходит последним)', left: 'Клиент № {id} вышел из семьи.',
    add: 'Добавить участника', addMaySpend: 'Может тратить общие баллы', added: 'Клиент № {id} добавлен в семью.',
    changed: 'Сохранено.', history: 'История общего счёта', noCard: 'Карта {card} ни за кем не зарегистрирована.',
    closed: 'Семья закрыта.',
  },
  en: {
    title: 'Families', create: 'Create a family', owner: 'Owner', who: 'Customer: a customer number or a card number',
    whoHint: 'Up to 10 digits: a customer’s number; longer: one of their cards.',
    openTitle: 'Open a family', familyId: 'Family number', about:
      'A family is the owner’s shared account: the members’ purchases add up in it, and those the owner allows may spend it.',
    pot: 'Shared account', members: 'Members', role: 'Role', ownerRole: 'owner', memberRole: 'member',
    maySpend: 'May spend', joined: 'Joined', allow: 'Allow spending', forbid: 'Forbid spending',
    leave: 'Remove', leaveOwner: 'Close the family (the owner leaves last)', left: 'Customer #{id} left the family.',
    add: 'Add a member', addMaySpend: 'May spend the shared points', added: 'Customer #{id} joined the family.',
    changed: 'Saved.', history: 'The shared account’s history', noCard: 'Card {card} is registered to nobody.',
    closed: 'The family is closed.',
  },
};
