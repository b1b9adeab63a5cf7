// adjustments.strings.js: the words of the back office's manual
// adjustments section, Russian and English.
export const strings = {
  ru: {
    title: 'Ручная корректировка', about:
      'Начислить или списать баллы вручную — только с причиной. Начисление — новая партия баллов с обычным сроком; списание берёт партии, что сгорают раньше, и не уводит баланс ниже нуля.',
    limit: 'Ваш предел: ±{n} баллов за одну корректировку.', card: 'Номер карты',
    points: 'Баллы', pointsHint: 'Со знаком: 300 — начислить, -300 — списать.',
    reason: 'Причина', reasonHint: 'Её увидят в журнале аудита: например, «двойное списание по чеку 1042 от 12.11».',
    kind: 'Вид баллов (необязательно)', kindHint: 'Пусто — вид баллов за покупки из программы.',
    submit: 'Провести', done: 'Проведено: {points} по карте {card}. Баланс теперь {balance}.',
    replayed: 'Эта корректировка уже была проведена ({at}) и повторно не засчитана. Баланс {balance}.',
    key: 'Ключ корректировки: {key}. Повторная отправка того же не удвоит её.',
    pointsWhole: 'Целое число, не ноль.',
  },
  en: {
    title: 'Manual adjustment', about:
      'Add or take points by hand, always with a reason. A credit is a new lot of points with the usual validity; a debit takes the lots expiring first and never goes below zero.',
    limit: 'Your limit: ±{n} points per adjustment.', card: 'Card number',
    points: 'Points', pointsHint: 'With a sign: 300 adds, -300 takes.',
    reason: 'Reason', reasonHint: 'It shows in the audit log: e.g. “double charge on receipt 1042 of 12.11”.',
    kind: 'Kind of points (optional)', kindHint: 'Empty: the program’s purchase kind.',
    submit: 'Post', done: 'Posted: {points} on card {card}. The balance is now {balance}.',
    replayed: 'This adjustment was posted already ({at}) and is not counted again. Balance {balance}.',
    key: 'Adjustment key: {key}. Sending the same again will not double it.',
    pointsWhole: 'A whole number, not zero.',
  },
};
