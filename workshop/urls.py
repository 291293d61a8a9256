from django.urls import include, path

from workshop import views

app_name = "workshop"

urlpatterns = [
    path("", views.teacher_page, name="teacher"),
    path("runs/<int:run_id>/", views.run_samples, name="run-samples"),
    path("exam/start/", views.exam_start_view, name="exam-start"),
    path("exam/<int:run_id>/reveal/", views.exam_reveal_view, name="exam-reveal"),
    # The exam's twin, unnamed: routes, logs and metrics show /workshop/exam/twin/..., never the mode.
    path("exam/twin/<path:rest>", views.exam_twin, name="exam-twin"),
    path("twin/", include("workshop.twins.urls")),
    path("<slug:mode>/run/", views.run_start_view, name="run-start"),
    path("<slug:mode>/reset/", views.reset_view, name="reset"),
    path("<slug:mode>/try/<slug:side>/", views.try_view, name="try"),
]
