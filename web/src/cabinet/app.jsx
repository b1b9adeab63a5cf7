// app.jsx: the cabinet page (placeholder until its pages land).
import { makeT, useLang } from '../lib/i18n.js';
import { LangSwitch } from '../lib/ui.jsx';

const t = makeT({ ru: { title: 'Копилка' }, en: { title: 'Kopilka' } });

export function App() {
  useLang();
  return (
    <header class="topbar">
      <span class="brand">{t('title')}</span>
      <span class="spacer" />
      <LangSwitch />
    </header>
  );
}
