// main.jsx: mounts the till page (app.jsx) into index's #app.
import '../lib/style.css';
import './till.css';
import { render } from 'preact';
import { App } from './app.jsx';

render(<App />, document.getElementById('app'));
