// Log in with email and password (POST /api/v1/auth/login).

import * as api from '../api.js';
import { field, h, onSubmit, value } from '../ui.js';

export function loginPage(view, loggedIn) {
  const form = h('form', { class: 'panel login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', text: 'Log in' }),
    field({ name: 'email', label: 'Email', type: 'email', required: true, autocomplete: 'username' }),
    field({ name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' }),
    h('button', { type: 'submit', class: 'primary', text: 'Log in' }));
  onSubmit(form, {
    build: (f) => ({ email: value(f, 'email'), password: f.elements.namedItem('password').value }),
    send: (body) => api.login(body.email, body.password),
    done: loggedIn,
  });
  view.append(form);
  form.querySelector('input').focus();
}
