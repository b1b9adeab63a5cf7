// dashboard.strings.js: the dashboard's words in Russian and English.
export const strings = {
  ru: {
    title: 'Сводка', period: 'Период и магазин', from: 'С', to: 'По', store: 'Магазин',
    show: 'Показать', loading: 'Загрузка…',
    members: 'Участники', membersActive: 'Активные', activeHint: 'покупали за 12 месяцев до конца периода',
    activeShare: 'Доля активных', issued: 'Начислено баллов', burnt: 'Списано баллов',
    expired: 'Сгорело баллов', adjusted: 'Корректировки', outstanding: 'Баллов на счетах',
    liability: 'Обязательства', liabilityHint: 'баллы на счетах по цене балла текущей программы',
    figures: 'Главные цифры за период {from} — {to}', allStores: 'все магазины', inStore: 'магазин {store}',
    chartPoints: 'Баллы по месяцам', chartBuys: 'Покупки и новые участники по месяцам',
    purchases: 'Покупки', newMembers: 'Новые участники', revenue: 'Выручка',
    month: 'Месяц', asTable: 'Показать таблицей: {title}', none: 'За этот период данных нет.',
  },
  en: {
    title: 'Dashboard', period: 'Period and store', from: 'From', to: 'To', store: 'Store',
    show: 'Show', loading: 'Loading…',
    members: 'Members', membersActive: 'Active', activeHint: 'bought in the 12 months before the period’s end',
    activeShare: 'Active share', issued: 'Points issued', burnt: 'Points burnt',
    expired: 'Points expired', adjusted: 'Adjustments', outstanding: 'Points outstanding',
    liability: 'Liability', liabilityHint: 'outstanding points at the running program’s point value',
    figures: 'Main figures for {from} – {to}', allStores: 'every store', inStore: 'store {store}',
    chartPoints: 'Points by month', chartBuys: 'Purchases and new members by month',
    purchases: 'Purchases', newMembers: 'New members', revenue: 'Revenue',
    month: 'Month', asTable: 'Show as a table: {title}', none: 'No data for this period.',
  },
};
